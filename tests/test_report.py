"""The run report: a synthetic but consistent run directory written with the real writers,
checked against numbers computed independently here."""

import base64
import dataclasses
import html as html_lib
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from hubensemble import candidate, ensemble, report
from hubensemble.candidate import split_record, write_candidate
from hubensemble.errors import RunError
from hubensemble.evaluate import write_evaluation
from hubensemble.fileio import atomic_save_npy, atomic_write_json, read_json
from hubensemble.rank import Ranking
from hubensemble.rundir import Run

C = 3
N_VAL, N_TEST = 60, 50
# module: (kNN score, fine-tuning skill) — the proxy's order differs from fine-tuning's.
MODULES = {"alpha": (0.90, 1.6), "beta_net": (0.80, 0.8), "gamma": (0.70, 1.4),
           "delta": (0.60, 0.3)}
OOM = "ResourceExhaustedError: OOM when allocating tensor with shape [512, 2048]"
SHA = "[checksum] sha256 mismatch: expected 1234abcd, got ffff0000; update the catalogue"


def softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def probs_for(y, skill, rng):
    z = rng.normal(size=(len(y), C))
    z[np.arange(len(y)), y] += skill
    return softmax(z).astype(np.float32)


def ranking_rows(modules):
    rows = []
    for i, (name, (score, _)) in enumerate(modules.items()):
        rows.append({"name": name, "handle": f"/zoo/{name}", "status": "ok", "reason": None,
                     "score": score, "dim": 64 * (i + 1), "examples": 90, "seconds": 0.5,
                     "cache_hit": False, "stage": None, "family": "expert" if i else "generalist",
                     "index": i})
    rows.append({"name": "broken", "handle": "/zoo/broken", "status": "failed", "reason": SHA,
                 "score": None, "dim": None, "examples": None, "seconds": 0.1,
                 "cache_hit": None, "stage": "checksum", "family": "expert",
                 "index": len(modules)})
    return rows


def data_section():
    return {"args": {"spec": "npz:/data/toy.npz", "seed": 0},
            "task": {"name": "toy", "source": "a test", "fingerprint": "ab" * 32,
                     "class_names": ["cat", "dog", "emu"], "num_classes": C,
                     "sizes": {"train": 90, "val": N_VAL, "test": N_TEST},
                     "image_size": [16, 16], "same_size": True, "synthetic": False,
                     "flip": True, "skipped": []}}


def make_ranked_run(path, modules):
    Ranking(metric="knn", k=1, rows=ranking_rows(modules), selected=list(modules),
            selection={"rule": "top_k", "top_k": len(modules)}, examples=90).write(path)
    Run(path).update(data=data_section())


def make_full_run(path, modules=MODULES, robustness=True, seed=0):
    """ranking.json, candidates (2 trials per module, one failed, one broken), labels,
    ensemble.json via ensemble.run_ensemble, run.json via Run.update, robustness.json."""
    rng = np.random.default_rng(seed)
    make_ranked_run(path, modules)
    y_val, y_test = rng.integers(0, C, N_VAL), rng.integers(0, C, N_TEST)
    atomic_save_npy(path / "labels" / "val.npy", y_val)
    atomic_save_npy(path / "labels" / "test.npy", y_test)
    index = 0
    for name, (_, skill) in modules.items():
        for delta in (0.0, -0.8):
            trial = f"default-{index:04d}-{name}"
            hp = {"lr": 0.01 if delta else 0.1, "steps": 40, "weight_decay": 0.0,
                  "dropout": 0.0, "batch_size": 32, "seed": index, "augmentation": None,
                  "mixup_alpha": 0.0, "momentum": 0.9}
            vp, tp = probs_for(y_val, skill + delta, rng), probs_for(y_test, skill + delta, rng)
            record = {"trial": trial, "module": name, "handle": f"/zoo/{name}", "hparams": hp,
                      "seed": index, "status": "ok", "reason": None,
                      "val": split_record(vp, y_val), "test": split_record(tp, y_test),
                      "has_test": True}
            write_candidate(path / "candidates", record, val_probs=vp, test_probs=tp)
            index += 1
    first = next(iter(modules))
    write_candidate(path / "candidates",
                    {"trial": f"default-{index:04d}-{first}", "module": first, "hparams": {},
                     "status": "failed", "reason": OOM, "has_test": True})
    write_candidate(path / "candidates",
                    {"trial": f"default-{index + 1:04d}-{first}", "module": first,
                     "hparams": {}, "status": "ok", "has_test": True},
                    val_probs=probs_for(y_val[:5], 1.0, rng),
                    test_probs=probs_for(y_test, 1.0, rng))
    result = ensemble.run_ensemble(path, budget=6)
    Run(path).update(stages={"rank": {"seconds": 12.5, "modules": len(modules) + 1},
                             "tune": {"seconds": 304.25}, "ensemble": {"seconds": 0.4}},
                     export={"path": str(path / "export"), "skipped": []})
    if robustness:
        write_evaluation(fake_robustness(with_single=True), path / "robustness.json")
    return result


def fake_robustness(with_single):
    def entry(a):
        single = {"accuracy": a - 0.05, "nll": 1.0 - a + 0.1, "ece": 0.06} if with_single \
            else None
        return {"ensemble": {"accuracy": a, "nll": 1.0 - a, "ece": 0.03}, "best_single": single}

    corr = {"gaussian_noise": {"1": entry(0.7125), "2": entry(0.6), "3": entry(0.4)},
            "jpeg": {"1": entry(0.8), "2": entry(0.75), "3": entry(0.6875)}}
    result = {"split": "test", "n": N_TEST, "seed": 0, "severities": [1, 2, 3],
              "best_single": {"trial": "default-0000-alpha", "module": "alpha", "index": 0}
              if with_single else None,
              "clean": entry(0.9125), "corruptions": corr,
              "mean_corrupted": {"ensemble": {"accuracy": 0.66, "nll": 0.34, "ece": 0.03},
                                 "best_single": ({"accuracy": 0.61, "nll": 0.44, "ece": 0.06}
                                                 if with_single else None)}}
    if not with_single:
        result["best_single_missing"] = "the export has no serve_members signature"
    return result


def shown(md):
    """What report.md shows for plain text: Markdown's backslash escapes and entities undone
    (the report escapes "[", "*", "<" … in names and reasons so that they stay literal)."""
    return html_lib.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md))


def self_contained(html):
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html, flags=re.I)
    return (all(r.startswith("data:") for r in refs) and "<script" not in html.lower()
            and "<link" not in html.lower() and "url(" not in html.lower())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    ens = make_full_run(path)
    md, html = report.write_report(path)
    return path, ens, md.read_text(), html.read_text()


def test_report_files_and_self_contained_html(full_run):
    path, _, md, html = full_run
    assert (path / "report.md").exists() and (path / "report.html").exists()
    assert self_contained(html)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4  # kNN scatter, ensemble curve, reliability, robustness
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    linked = re.findall(r"\]\((report_files/[^)]+\.png)\)", md)
    assert len(linked) == 4
    for rel in linked:
        assert (path / rel).read_bytes().startswith(b"\x89PNG")
    assert not list(path.glob("**/.tmp-*"))


def test_report_holds_the_runs_numbers(full_run):
    path, ens, md, html = full_run
    for text in (shown(md), html):
        for name in list(MODULES) + ["broken"]:
            assert name in text
        # Failures: the ranking's, the failed trial's and the unusable candidate's reasons.
        assert "sha256 mismatch: expected 1234abcd" in text and OOM in text
        assert "val_probs.npy has shape (5, 3)" in text
        for model in ("ensemble", "best_single"):
            for k in ("accuracy", "nll", "ece"):
                assert f"{ens['test'][model][k]:.4f}" in text, (model, k)
        for m in ens["members"]:
            assert m["trial"] in text
        assert "0.7125" in text and "gaussian_noise" in text  # robustness table
        assert "304.2 s" in text or "5 min 04.2 s" in text  # tune's time
    # The members' varying hyperparameter (lr) is a column; the shared ones are listed once.
    assert "Shared by every member" in md and "momentum = 0.9" in md


def test_spearman_rho_matches_scipy(full_run):
    path, _, md, html = full_run
    y_val = np.load(path / "labels" / "val.npy")
    cands, _ = candidate.load_pool(path / "candidates", n_val=N_VAL, n_test=N_TEST)
    best = {}
    for c in cands:
        acc = float(np.mean(c.val_probs.argmax(axis=1) == y_val))
        best[c.module] = max(best.get(c.module, 0.0), acc)
    names = [n for n in MODULES if n in best]
    rho = spearmanr([MODULES[n][0] for n in names], [best[n] for n in names]).statistic
    assert f"Spearman ρ = {rho:.3f}" in md and f"Spearman ρ = {rho:.3f}" in html
    assert f"over {len(names)} modules" in md


def test_per_class_accuracy_matches_scikit_learns_confusion_matrix(full_run):
    """The per-class rows against scikit-learn's confusion_matrix of the ensemble (members'
    test_probs.npy with ensemble.json's weights) and of the best single member."""
    from sklearn.metrics import confusion_matrix

    path, ens, md, html = full_run
    y = np.load(path / "labels" / "test.npy")
    probs = {c.trial: c.test_probs for c in candidate.load_pool(
        path / "candidates", n_val=N_VAL, n_test=N_TEST)[0]}
    mixed = sum(m["weight"] * probs[m["trial"]] for m in ens["members"])
    section = shown(md)[shown(md).index("## Per-class accuracy on test"):]
    section = section[:section.index("\n## ", 5)]
    for p in (mixed, probs[ens["test"]["best_single"]["trial"]]):
        cm = confusion_matrix(y, p.argmax(axis=1), labels=list(range(C)))
        for c, name in enumerate(["cat", "dog", "emu"]):
            row = next(line for line in section.splitlines() if line.startswith(f"| {name} |"))
            assert f"{cm[c, c] / cm[c].sum():.4f}" in row and f"| {cm[c].sum()} |" in row


def test_spearman_and_reliability_helpers():
    rng = np.random.default_rng(3)
    for x, y in ([rng.random(7), rng.random(7)], [[1, 2, 2, 3, 5], [2, 1, 1, 4, 4]]):
        # Spearman's rho is Pearson's r of the ranks, ties sharing their average rank.
        want = np.corrcoef(rankdata(x), rankdata(y))[0, 1]
        assert report.spearman(x, y) == pytest.approx(want)
    assert report.spearman([3, 1, 2], [30, 10, 20]) == pytest.approx(1.0)
    assert report.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert report.spearman([1, 2], [2, 1]) is None
    assert report.spearman([1, 2, 3], [5, 5, 5]) is None
    assert report.spearman([7, 7, 7], [1, 2, 3]) is None
    with pytest.raises(ValueError, match="length"):
        report.spearman([1, 2, 3], [1, 2])
    probs = softmax(rng.normal(size=(200, 4)) * 2)
    y = rng.integers(0, 4, 200)
    rel = report.reliability(probs, y, bins=15)
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        inside = (conf > lo) & (conf <= hi)
        assert rel["count"][b] == inside.sum()
        if inside.any():
            assert rel["accuracy"][b] == pytest.approx(correct[inside].mean())
            assert rel["confidence"][b] == pytest.approx(conf[inside].mean())


@pytest.mark.parametrize("skill", [0.0, 0.5, 4.0])
def test_the_reliability_legend_covers_no_bar_or_count(skill):
    """The legend sat in the upper left, over the low-confidence bars (a model at chance, or
    one of many classes, has its bars there): it is drawn where no bar and no bin count is,
    measured on the drawn figure's artists (their window extents)."""
    from matplotlib.patches import Rectangle

    from hubensemble.report.figures import reliability_figure

    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 400)
    z = rng.normal(size=(400, 10)) * 0.3
    z[np.arange(400), y] += skill
    panels = [("ensemble", softmax(z), y), ("best single", softmax(z * 1.5), y)]
    fig = reliability_figure(panels)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        bars = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, Rectangle)]
        counts = [t.get_window_extent(renderer) for t in ax.texts]
        assert bars and counts
        hit = [b for b in bars + counts if legend.overlaps(b)]
        assert not hit, (legend, hit)
        assert fig.bbox.contains(legend.x0, legend.y0)  # drawn inside the figure


def test_summary_table_shows_the_numbers(full_run, monkeypatch):
    path, ens, _, _ = full_run
    assert len(ens["members"]) >= 2  # the test data make a real ensemble
    text = report.summary_table(path)
    for model in ("ensemble", "best_single"):
        for k in ("accuracy", "nll", "ece"):
            assert f"{ens['test'][model][k]:.4f}" in text
    assert ens["test"]["best_single"]["trial"] in text
    assert f"ensemble size: {len(ens['members'])} members" in text
    assert "rank 12.5 s" in text and "ensemble 0.4 s" in text
    assert str(path / "export") in text and str(path / "report.html") in text
    # What the run skipped is on the terminal too, named with its reason.
    assert f"skipped: 1 module could not be ranked: broken ({SHA})" in text
    failed = sorted(p.name for p in (path / "candidates").iterdir()
                    if read_json(p / "trial.json")["status"] == "failed")
    assert f"skipped: 1 trial of the sweep failed: {failed[0]} ({OOM})" in text
    assert '(every failure with its whole reason: report.html, "What failed and why")' in text
    assert "member left out of the export" not in text  # export skipped nothing
    assert "members left out of the export" not in text
    # The report's path is absolute, as the export's, when the run is named relatively (the
    # demo printed "export: /abs/hubensemble-demo/export" beside "report: hubensemble-demo/…").
    monkeypatch.chdir(path.parent)
    text = report.summary_table(path.name)
    assert f"report: {path.resolve() / 'report.html'} (and report.md)" in text


def test_the_closing_table_says_why_the_one_se_rule_kept_more_picks(tmp_path, figures_not_drawn):
    """A new-user check: with the one-se size rule keeping 2 picks where validation CE was
    best at 1, the closing table said "ensemble size: 2 members" and not why; it now gives
    the report's own sentence (`size_rule_text`): the rule, the standard error and the best
    validation CE with its size."""
    make_full_run(tmp_path, robustness=False, seed=2)
    e = read_json(tmp_path / "ensemble.json")
    rule, curve = e["size_rule"], e["val_curve"]
    assert rule["rule"] == "one-se" and rule["size"] > rule["best_size"]
    best = min(curve, key=lambda p: p["ce"])
    assert best["size"] == rule["best_size"]
    why = (f"the largest size within one standard error ({rule['se']:.4f}) of the best "
           f"validation CE {best['ce']:.4f} (at size {best['size']}) was kept (size rule "
           "one-se: validation cannot tell those sizes apart")
    line = next(t for t in report.summary_table(tmp_path).splitlines()
                if t.startswith("ensemble size:"))
    assert line.startswith(f"ensemble size: {len(e['members'])} members ({rule['size']} "
                           f"greedy picks) of {e['n_candidates']} candidates: {why}"), line
    md = report.write_report(tmp_path)[0].read_text()
    assert why in md[md.index("## Ensemble size"):]


def test_the_ensemble_command_says_why_the_one_se_rule_kept_more_picks(tmp_path, in_process):
    """`hubensemble ensemble --run RUN` printed the ensemble's size and not why, where the
    closing table and the report say it: its output now has the same sentence
    (`ensembletext.size_rule_text`), and the ensemble.json it writes holds the same choice."""
    make_full_run(tmp_path, robustness=False, seed=2)
    code, out, err = in_process("ensemble", "--run", tmp_path, "--budget", "6")
    assert code == 0, err
    e = read_json(tmp_path / "ensemble.json")
    rule, curve = e["size_rule"], e["val_curve"]
    assert rule["rule"] == "one-se" and rule["size"] > rule["best_size"]
    best = min(curve, key=lambda p: p["ce"])
    why = (f"the largest size within one standard error ({rule['se']:.4f}) of the best "
           f"validation CE {best['ce']:.4f} (at size {best['size']}) was kept (size rule "
           "one-se: validation cannot tell those sizes apart")
    assert f"\nsize:       {rule['size']} greedy picks: {why}" in out  # size > best >= 1
    table = report.summary_table(tmp_path)
    assert table.count(why) == 1
    # The paper rule keeps the best size: nothing to explain.
    code, out, err = in_process("ensemble", "--run", tmp_path, "--budget", "6",
                                "--size-rule", "paper")
    assert code == 0, err
    assert "size rule" not in out and "\nsize:" not in out


def test_summary_table_counts_what_it_does_not_name(tmp_path):
    make_ranked_run(tmp_path, MODULES)
    skipped = [{"trial": f"default-{i:04d}-alpha", "module": "alpha",
                "reason": "weights.weights.h5 is missing " * 10} for i in range(7)]
    Run(tmp_path).update(export={"path": str(tmp_path / "export"), "skipped": skipped})
    line = next(t for t in report.summary_table(tmp_path).splitlines()
                if "left out of the export" in t)
    assert line.startswith("skipped: 7 members left out of the export: default-0000-alpha")
    assert "default-0004-alpha" in line and "default-0005-alpha" not in line
    assert line.endswith("; and 2 more") and "…" in line  # long reasons are cut


def test_a_run_that_only_ranked_gets_a_report_saying_what_is_missing(tmp_path):
    make_ranked_run(tmp_path, MODULES)
    # A figure of an earlier report that no longer applies is removed.
    (tmp_path / "report_files").mkdir()
    (tmp_path / "report_files" / "ensemble_curve.png").write_bytes(b"old")
    md_path, html_path = report.write_report(tmp_path)
    assert not (tmp_path / "report_files" / "ensemble_curve.png").exists()
    md, html = md_path.read_text(), html_path.read_text()
    assert self_contained(html)
    for name in list(MODULES) + ["broken"]:
        assert name in md and name in html
    assert "sha256 mismatch" in md  # the ranking's failure
    # The selection rule as the rank flag that gives it (it said "top_k (top_k=3)", Python's
    # keyword, in a document of command lines, written from Python too).
    assert f"selection rule `--top-k {len(MODULES)}`: " in md and "top_k" not in md, md
    assert "no fine-tuned candidates yet" in md and f"hubensemble tune --run {tmp_path}" in md
    # The next command that can run is tune: `ensemble` would refuse without candidates, and
    # `evaluate` would be pointed at an export that does not exist (a new-user check).
    tune = f"run `hubensemble tune --run {tmp_path}`"
    assert f"no ensemble yet (ensemble.json is missing): {tune} (then ensemble)" in shown(md)
    assert (f"robustness.json is missing): {tune} (then ensemble, export, evaluate)"
            in shown(md))
    assert f"hubensemble ensemble --run {tmp_path}`" not in md
    assert f"{tmp_path}/export" not in md
    assert "no stage timings" in md
    assert "data:image" not in html and "](report_files/" not in md
    text = report.summary_table(tmp_path)
    assert "no ensemble yet" in text and "export: not written yet" in text


def test_few_modules_leave_rho_undefined_and_ensemble_only_robustness(tmp_path, figures_not_drawn):
    two = {k: MODULES[k] for k in ("alpha", "gamma")}
    make_full_run(tmp_path, modules=two, robustness=False, seed=1)
    write_evaluation(fake_robustness(with_single=False), tmp_path / "robustness.json")
    md_path, html_path = report.write_report(tmp_path)
    md = md_path.read_text()
    assert "Spearman ρ is undefined: only 2 modules have a candidate" in md and "at least 3" in md
    assert "Ensemble only: the export has no serve_members signature" in md
    assert self_contained(html_path.read_text())


def test_an_ensemble_only_evaluation_names_the_commands_that_compare_the_best_single(
        tmp_path, figures_not_drawn):
    """evaluate of an export without serve_members (an older hubensemble's) stores "…; only
    the ensemble was evaluated (export it again with this hubensemble …)" in
    robustness.json, and the report showed it naming no command. The record keeps its way
    on neutral ("best_single_way": "export", read from Python and the command line alike);
    the report words it with its run's commands: export, then evaluate. A best single that
    is no member (no export runs it) gets none. Fails before: no command in the report."""
    import json

    import tensorflow as tf

    from hubensemble.data import Split, Task
    from hubensemble.evaluate import evaluate_model
    from hubensemble.report.runfiles import load_run

    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")

    @tf.function(input_signature=[spec])
    def serving_default(images):
        return {"probabilities": tf.nn.softmax(tf.reduce_mean(images, axis=[1, 2]) * 10.0)}

    model = tmp_path / "older"
    root = tf.train.Checkpoint()
    root.serving_default = serving_default
    tf.saved_model.save(root, str(model), signatures={
        "serving_default": serving_default.get_concrete_function()})
    (model / "assets").mkdir(exist_ok=True)
    (model / "assets" / "hubensemble.json").write_text(json.dumps(
        {"format": "hubensemble-export", "class_names": ["a", "b", "c"], "num_classes": 3,
         "best_single": "t1", "members": [{"trial": f"t{i}", "weight": 0.5} for i in (0, 1)]}))
    images = (np.random.default_rng(0).random((6, 4, 4, 3)) * 255).astype(np.uint8)
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images, labels=np.arange(6) % 3),
                test=Split(images=images, labels=np.arange(6) % 3))
    result = evaluate_model(model, task, corruptions=False, progress=False)
    assert result["best_single_way"] == "export", result
    assert "hubensemble export" not in result["best_single_missing"]  # neutral, as stored

    run = tmp_path / "run"
    make_full_run(run, robustness=False, seed=1)
    note = "the export has no serve_members signature"
    write_evaluation({**fake_robustness(with_single=False), "best_single_way": "export"},
                     run / "robustness.json")
    md = shown(report.write_report(run)[0].read_text())
    files = load_run(run)
    assert (f"Ensemble only: {note}. To compare with the best single member, run "
            f"`{files.cmd('export')}`, then `{files.cmd('evaluate')}`.") in md, md
    assert files.cmd("export").startswith(f"hubensemble export --run {run}")
    write_evaluation(fake_robustness(with_single=False), run / "robustness.json")
    md = shown(report.write_report(run)[0].read_text())
    assert f"Ensemble only: {note}" in md and "To compare with the best single" not in md


def test_an_evaluation_of_the_runs_training_images_is_said_not_held_out(tmp_path,
                                                                        figures_not_drawn):
    """`evaluate --data` on the run's photos plus new ones, written as RUN/robustness.json:
    the report says beside the table that most of its images trained or chose the export;
    on the run's own data (its test split: held out) it says nothing of it."""
    make_full_run(tmp_path, robustness=False, seed=3)
    seen = {"run": str(tmp_path), "images": 30, "train": 24, "val": 6}
    for same, shown_here in ((False, True), (True, False), (None, True)):
        write_evaluation({**fake_robustness(with_single=True), "not_held_out": seen,
                          "same_data_as_export": same}, tmp_path / "robustness.json")
        md = shown(report.write_report(tmp_path)[0].read_text())
        warning = (f"**Warning:** 30 of {N_TEST} test images are training (24) or validation (6) "
                   "images of this export's run; their metrics are not a held-out measure "
                   f"(the run: {tmp_path}; score images it never saw for one).")
        assert (warning in md) is shown_here, md[md.find("Robustness"):][:800]
    write_evaluation({**fake_robustness(with_single=True), "not_held_out": None},
                     tmp_path / "robustness.json")
    assert "held-out" not in report.write_report(tmp_path)[0].read_text()


def test_an_evaluation_of_the_exports_own_folder_changed_since_is_said_in_the_report(
        tmp_path, figures_not_drawn):
    """`evaluate` on the export's own folder with files added or removed since its fit scores
    every image, the training ones too (heldout.changed_files): it warned on the terminal, and
    robustness.json kept it ("data_changed"), but the report's robustness table stood without
    a word (left alone earlier). The same warning is now beside the table."""
    from hubensemble.heldout import changed_files_note

    make_full_run(tmp_path, robustness=False, seed=3)
    changed = {"folder": "/data/photos", "recorded": 30, "present": 29, "added": 1, "removed": 1,
               "train": 19, "val": 5, "test": 5}
    result = {**fake_robustness(with_single=True), "data_changed": changed}
    write_evaluation(result, tmp_path / "robustness.json")
    md = shown(report.write_report(tmp_path)[0].read_text())
    note = changed_files_note(result)
    assert note and f"**Warning:** {note}." in md, md[md.find("Robustness"):][:1200]
    assert "1 here that was not among them, 1 of them not here" in md
    write_evaluation({**fake_robustness(with_single=True), "data_changed": None},
                     tmp_path / "robustness.json")
    assert "files this export was fit on" not in report.write_report(tmp_path)[0].read_text()


def test_not_a_run_directory_is_an_error(tmp_path):
    with pytest.raises(RunError, match="not a hubensemble run"):
        report.write_report(tmp_path)
    with pytest.raises(RunError, match="nope does not exist"):
        report.write_report(tmp_path / "nope")


def test_a_file_name_that_is_not_utf8_is_shown_escaped(tmp_path):
    """run.json keeps a file name that is not UTF-8 (b"caf\\xe9.jpg") as a lone surrogate
    escape; writing the report (UTF-8) raised UnicodeEncodeError on it."""
    make_ranked_run(tmp_path, MODULES)
    data = data_section()
    data["task"]["skipped"] = [["/data/cat/caf\udce9.jpg", "an empty file (0 bytes)"]]
    Run(tmp_path).update(data=data)
    md_path, html_path = report.write_report(tmp_path)
    for text in (md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")):
        assert "/data/cat/caf\\xe9.jpg: an empty file (0 bytes)" in text


def test_the_data_section_counts_the_files_that_are_not_images(tmp_path):
    """run.json's data.task "not_images" (`Task.not_images`: a class folder's README, notes)
    is a row of the report's data section; a run.json written before it has no row and still
    reads. Fails before: the record had no row (and the loader's warning alone said them)."""
    make_ranked_run(tmp_path, MODULES)
    data = data_section()
    Run(tmp_path).update(data=data)
    assert "not images by name" not in report.write_report(tmp_path)[0].read_text()
    data["task"]["not_images"] = {"count": 12, "examples": ["/data/cat/README.md"]}
    Run(tmp_path).update(data=data)
    md = report.write_report(tmp_path)[0].read_text()
    assert ("12 files in the class folders not read: not images by name or first bytes "
            "(e.g. /data/cat/README.md)") in md


def test_a_run_without_a_test_split_says_so(tmp_path, figures_not_drawn):
    make_full_run(tmp_path, robustness=False, seed=2)
    (tmp_path / "labels" / "test.npy").unlink()
    data = data_section()
    data["task"]["sizes"]["test"] = None
    Run(tmp_path).update(data=data)
    ensemble.run_ensemble(tmp_path, budget=6)
    md_path, html_path = report.write_report(tmp_path)
    md = md_path.read_text()
    # Why, in the user's terms (it said "no RUN/labels/test.npy" of an npz without x_test).
    why = ("the run's data has no test split (give it one: x_test and y_test in an npz, a "
           "test/ folder or --test-fraction for folder: data, --split test=… for tfds: data)")
    assert f"No test metrics: {why}" in md, md
    assert "reliability.png" not in md and "ensemble_curve.png" in md
    assert "the run has no test split" in md
    from hubensemble.lockwords import command_line

    # ensemble.json stores it neutral (it stored the flags, which a Python caller read in
    # result.test_missing and summary_table): each reader words the way on.
    assert ensemble.read_ensemble(tmp_path)["test_missing"] == "the run's data has no test split"
    python = ("the run's data has no test split (give it one: x_test and y_test in an npz, a "
              "test/ folder or load_task(…, test_fraction=F) for folder: data, "
              "splits={'test': …} for tfds: data)")
    assert f"no test metrics: {python}" in report.summary_table(tmp_path)
    with command_line():
        assert f"no test metrics: {why}" in report.summary_table(tmp_path)
    # An ensemble.json that stored the command line's words is worded for its reader too.
    doc = read_json(tmp_path / "ensemble.json")
    atomic_write_json(tmp_path / "ensemble.json", dict(doc, test_missing=why))
    assert f"no test metrics: {python}" in report.summary_table(tmp_path)
    # A data record with a test split whose labels file is gone: that file is named.
    data["task"]["sizes"]["test"] = 12
    Run(tmp_path).update(data=data)
    ensemble.run_ensemble(tmp_path, budget=6)
    assert (f"no test metrics: no {tmp_path / 'labels' / 'test.npy'}"
            in report.summary_table(tmp_path))


def test_a_candidates_ce_in_the_report_is_the_number_its_trial_json_records(tmp_path,
                                                                            figures_not_drawn):
    """One cross-entropy (metrics.nll, floor 1e-7) on the float32 table: a member that gave
    its true class 1e-12 once shows the CE trial.json records, not a differently floored one."""
    make_ranked_run(tmp_path, {"alpha": MODULES["alpha"]})
    rng = np.random.default_rng(5)
    y_val = rng.integers(0, C, N_VAL)
    atomic_save_npy(tmp_path / "labels" / "val.npy", y_val)
    vp = probs_for(y_val, 1.0, rng)
    vp[0] = 0.5
    vp[0, y_val[0]] = 1e-12  # below the floor: 1e-7 and 1e-12 floors give CE 0.12 apart
    vp[0] /= vp[0].sum()
    record = {"trial": "default-0000-alpha", "module": "alpha", "hparams": {"lr": 0.1},
              "seed": 0, "status": "ok", "val": split_record(vp, y_val), "has_test": False}
    write_candidate(tmp_path / "candidates", record, val_probs=vp)
    ensemble.run_ensemble(tmp_path, budget=2)
    recorded = read_json(tmp_path / "candidates" / "default-0000-alpha" / "trial.json")
    ce = recorded["val"]["ce"]
    p_true = np.maximum(vp[np.arange(N_VAL), y_val].astype(np.float64), 1e-7)
    assert ce == pytest.approx(float(np.mean(-np.log(p_true))), rel=1e-12)
    floored_lower = float(np.mean(-np.log(np.maximum(vp[np.arange(N_VAL), y_val], 1e-12))))
    assert f"{floored_lower:.4f}" != f"{ce:.4f}"
    md = report.write_report(tmp_path)[0].read_text()
    members = md.split("## Ensemble members")[1].split("## ")[0]
    row = next(line for line in members.splitlines() if "default-0000-alpha" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{recorded['val']['accuracy']:.4f}" and cells[5] == f"{ce:.4f}"
    # ... and the same number in ensemble.json (its one candidate is the best single and the
    # first point of the greedy curve).
    written = read_json(tmp_path / "ensemble.json")
    assert written["val"]["best_single"]["nll"] == ce
    assert written["val_curve"][0]["ce"] == ce


def test_classes_without_validation_or_test_examples_are_named_everywhere(tmp_path,
                                                                          figures_not_drawn):
    """Issue 13, example 7: classes of 10/10/3/2 images. The split rule (validation and
    test 20 % each, at least one example, but two kept for training) leaves the 2-image
    class out of validation and test, and the 3-image class out of test: test metrics cover
    2 of 4 classes. ensemble.json, the summary, the report and RUN/log.txt say so."""
    from PIL import Image

    from hubensemble.rundir import DataArgs

    data = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for name, n in (("circle", 10), ("square", 10), ("star", 3), ("moon", 2)):
        (data / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                data / name / f"{i}.png")
    args = DataArgs(spec=f"folder:{data}")
    task = args.load()
    assert task.class_names == ["circle", "moon", "square", "star"]
    path = tmp_path / "run"
    run = Run(path)
    run.attach_task(task, args)
    # Independent count of what each split holds, class by class.
    assert np.bincount(task.val.labels, minlength=4).tolist() == [2, 0, 2, 1]
    assert np.bincount(task.test.labels, minlength=4).tolist() == [2, 0, 2, 0]
    for i in range(3):
        vp = softmax(rng.normal(size=(len(task.val), 4)) + 2 * np.eye(4)[task.val.labels])
        tp = softmax(rng.normal(size=(len(task.test), 4)) + 2 * np.eye(4)[task.test.labels])
        record = {"trial": f"default-000{i}-m", "module": "m", "hparams": {}, "status": "ok",
                  "val": split_record(vp, task.val.labels),
                  "test": split_record(tp, task.test.labels), "has_test": True}
        write_candidate(path / "candidates", record, val_probs=vp.astype(np.float32),
                        test_probs=tp.astype(np.float32))
    ensemble.run_ensemble(path, budget=3)

    test_note = "test metrics cover 2 of 4 classes; no test example of: moon, star"
    val_note = ("validation metrics and the ensemble selection cover 3 of 4 classes; no "
                "validation example of: moon")
    assert read_json(path / "ensemble.json")["coverage"] == {
        "val": {"classes": 4, "covered": 3, "missing": ["moon"]},
        "test": {"classes": 4, "covered": 2, "missing": ["moon", "star"]}}
    assert run.coverage()["train"]["missing"] == []
    summary = report.summary_table(path)
    assert f"note: {test_note}" in summary and f"note: {val_note}" in summary
    # The summary's note follows the test table.
    lines = summary.splitlines()
    assert lines.index(f"note: {test_note}") == 3 and lines[2].startswith("ensemble ")
    md_path, html_path = report.write_report(path)
    md, html = md_path.read_text(), html_path.read_text()
    test_section = md.split("## Best single member vs ensemble on test")[1].split("\n## ")[0]
    assert "Note: Test metrics cover 2 of 4 classes; no test example of: moon, star" in \
        test_section
    assert "Note: Validation metrics and the ensemble selection cover 3 of 4 classes" in md
    assert f"Coverage: {test_note}" in md and test_note in html
    log = (path / "log.txt").read_text()
    assert f"WARNING hubensemble.ensemble: {test_note}" in log and val_note in log
    # Classes with 1 to 4 examples there are named too, with their counts (fewest first):
    # one image moves such a class's accuracy by 1/n; nothing said it.
    val_few = ("validation metrics and the ensemble selection rest on fewer than 5 validation "
               "examples of 3 classes: 'star' 1, 'circle' 2, 'square' 2; one image moves such "
               "a class's accuracy by 0.5 (50 percentage points) or more, so read its figures as "
               "rough (give it more images)")
    test_few = ("test metrics rest on fewer than 5 test examples of 2 classes: 'circle' 2, "
                "'square' 2; one image moves such")
    assert f"; {val_few}" in task.summary() and test_few in task.summary()
    assert f"note: {val_few}" in summary.splitlines() and f"note: {test_few}" in summary
    assert f"Note: V{val_few[1:]}." in md and f"Note: T{test_few[1:]}" in test_section
    assert f"WARNING hubensemble.ensemble: {val_few}" in log and test_few in log
    # The Data section gives each class's examples per split when they are unbalanced (it
    # gave the split sizes only), and nothing for balanced splits.
    from hubensemble.report.datarows import class_counts_row

    assert ("| examples per class (train / val / test) | circle: 6 / 2 / 2, moon: 2 / 0 / 0, "
            "square: 6 / 2 / 2, star: 2 / 1 / 0 |") in md
    assert class_counts_row(["a", "b"], {"train": [0, 0, 1, 1], "val": [0, 1],
                                         "test": None}) is None


def test_a_test_split_one_class_dominates_is_said_beside_its_accuracy(tmp_path, figures_not_drawn):
    """A 95/5 task (npz: 190 'ok', 10 'defect' training images; test 95 / 5) whose ensemble
    never predicts 'defect' showed "ensemble 0.9500" in the summary and the report's test
    table and nothing beside it. Now both say what predicting the largest class alone
    scores, counted here from the labels; a balanced split says nothing (full_run's test)."""
    from hubensemble.data.coverage import majority_note
    from hubensemble.rundir import DataArgs

    rng = np.random.default_rng(0)
    y, y_test = np.repeat([0, 1], [190, 10]), np.repeat([0, 1], [95, 5])
    np.savez(tmp_path / "imb.npz", x_train=rng.integers(0, 256, (200, 8, 8, 3), np.uint8),
             y_train=y, x_test=rng.integers(0, 256, (100, 8, 8, 3), np.uint8), y_test=y_test,
             class_names=np.array(["ok", "defect"]))
    args = DataArgs(spec=f"npz:{tmp_path / 'imb.npz'}")
    task = args.load()
    path = tmp_path / "run"
    Run(path).attach_task(task, args)
    for i in range(2):  # both always say 'ok'
        vp = softmax(np.tile([2.0 + i, 0.0], (len(task.val), 1)))
        tp = softmax(np.tile([2.0 + i, 0.0], (len(task.test), 1)))
        record = {"trial": f"default-000{i}-m", "module": "m", "hparams": {}, "status": "ok",
                  "val": split_record(vp, task.val.labels),
                  "test": split_record(tp, task.test.labels), "has_test": True}
        write_candidate(path / "candidates", record, val_probs=vp.astype(np.float32),
                        test_probs=tp.astype(np.float32))
    ensemble.run_ensemble(path, budget=2)
    top = int(np.sum(task.test.labels == 0))
    share = top / len(task.test)
    said = (f"{top} of the {len(task.test)} test examples ({share:.0%}) are of class 'ok': "
            f"predicting it for every image scores accuracy {share:.3f}; read the accuracy "
            f"against that")
    assert majority_note(task.class_names, task.test.labels, "test") == said
    summary = report.summary_table(path).splitlines()
    assert summary[2].startswith("ensemble ") and f"{share:.4f}" in summary[2]
    assert summary[3] == f"note: {said}, and per class (the report's per-class table)"
    md = report.write_report(path)[0].read_text()
    section = md.split("## Best single member vs ensemble on test")[1].split("\n## ")[0]
    assert f"Note: {said}, and per class" in section
    # The rule's edge: more than halfway from balanced (1/C) to one class alone.
    assert majority_note(["a", "b"], np.repeat([0, 1], [3, 1]), "val") is None  # 3/4
    assert majority_note(["a", "b"], np.repeat([0, 1], [4, 1]), "val").startswith(
        "4 of the 5 validation examples (80%) are of class 'a'")
    assert majority_note(list("abcdefghij"), np.repeat([0, 1], [6, 4]), "test")  # 0.6 > 0.55


def test_the_summary_computes_coverage_for_an_older_ensemble_json(full_run, tmp_path):
    path, *_ = full_run
    text = report.summary_table(path)
    assert "note:" not in text  # every class has validation and test examples
    record = read_json(path / "ensemble.json")
    assert record["coverage"]["test"] == {"classes": C, "covered": C, "missing": []}
    # An ensemble.json from before coverage was recorded: the summary reads the labels.
    import shutil

    old = tmp_path / "old"
    shutil.copytree(path, old)
    record.pop("coverage")
    labels = np.load(old / "labels" / "test.npy")
    atomic_save_npy(old / "labels" / "test.npy", np.where(labels == 2, 0, labels))
    atomic_write_json(old / "ensemble.json", record)
    assert "note: test metrics cover 2 of 3 classes; no test example of: emu" in \
        report.summary_table(old)


def test_the_cost_section_shows_costs_the_budget_and_figure_2(tmp_path):
    from hubensemble.cost import Cost, machine_info, write_run_costs

    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    md_before = report.write_report(path)[0].read_text()
    assert "No inference costs" in md_before and "hubensemble cost --run" in md_before
    cands = [c for c in candidate.scan(path / "candidates")[0] if c.ok]
    # The best single candidate's module costs 1 GFLOP, the others 0.1 each.
    best = read_json(path / "ensemble.json")["val"]["best_single"]["trial"]
    best_module = next(c.module for c in cands if c.trial == best)
    gflops = {c.trial: 1.0 if c.module == best_module else 0.1 for c in cands}
    write_run_costs(path, {t: Cost(t.split("-", 2)[2], None, 32, C, macs=int(g * 5e8),
                                   params=1000, latency_ms={"1": 2.0, "64": 20.0})
                           for t, g in gflops.items()}, machine_info())
    result = ensemble.run_ensemble(path, budget=6, max_gflops=0.25).to_json()
    spent = sum(gflops[m["trial"]] for m in result["members"])
    assert spent <= 0.25
    md = report.write_report(path)[0].read_text()
    section = md[md.index("Inference cost"):]
    assert "--max-gflops 0.25" in section and "not eligible" in section
    assert f"{spent:.4f}" in section
    assert "best single within the budget" in section and best in section
    assert (path / "report_files" / "accuracy_vs_gflops.png").read_bytes().startswith(
        b"\x89PNG")
    assert "have no measured cost" not in section
    # A member tuned after the cost pass (a new-user check: "–" throughout, no word why).
    member = result["members"][0]["trial"]
    write_run_costs(path, {t: Cost(t.split("-", 2)[2], None, 32, C, macs=int(g * 5e8),
                                   params=1000, latency_ms={"1": 2.0, "64": 20.0})
                           for t, g in gflops.items() if t != member}, machine_info())
    md = report.write_report(path)[0].read_text()
    section = md[md.index("Inference cost"):]
    assert (f"1 of the {len(result['members'])} members has no measured cost (\"–\"): run "
            f"`hubensemble cost --run {path}`.") in section


def test_the_closing_table_says_a_best_single_left_out_of_retraining(tmp_path):
    """A new-user check: after `fit --retrain-full --max-gflops`, whose best single model
    does not fit the budget (so is no member, so was never retrained), the closing table gave
    the retrained ensemble and no best single row, without a word. It now says which model,
    why, and its test figures before retraining, labelled so."""
    from hubensemble.cost import Cost, machine_info, write_run_costs

    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    cands = [c for c in candidate.scan(path / "candidates")[0] if c.ok]
    best = read_json(path / "ensemble.json")["val"]["best_single"]["trial"]
    best_module = next(c.module for c in cands if c.trial == best)
    write_run_costs(path, {c.trial: Cost(c.module, None, 32, C,
                                         macs=int((1.0 if c.module == best_module else 0.1)
                                                  * 5e8),
                                         params=1000, latency_ms={"1": 2.0, "64": 20.0})
                           for c in cands}, machine_info())
    e = ensemble.run_ensemble(path, budget=6, max_gflops=0.25).to_json()
    members, was = e["members"], e["test"]["best_single"]
    inb = e["test"]["best_single_in_budget"]
    assert was["trial"] == best and best not in {m["trial"] for m in members}
    assert inb["trial"] in {m["trial"] for m in members}
    # What `export --retrain-full` records: a best single that is no member is None.
    after = {"ensemble": {"accuracy": 0.1234, "nll": 2.5, "ece": 0.2}, "best_single": None,
             "best_single_in_budget": {"trial": inb["trial"], "accuracy": 0.0987, "nll": 2.7,
                                       "ece": 0.3},
             "members": []}
    (path / "export" / "assets").mkdir(parents=True)
    (path / "export" / "saved_model.pb").write_bytes(b"")
    atomic_write_json(path / "export" / "assets" / "hubensemble.json", {
        "members": [{"trial": m["trial"], "weight": m["weight"]} for m in members],
        "skipped": [], "retrain_full": True,
        "metrics": {"test": after, "test_before_retraining": e["test"]}})
    lines = report.summary_table(path).splitlines()
    assert lines[0].startswith("test set, retrained on train + val")
    assert lines[1].startswith(f"best single within the budget ({inb['trial']})")
    assert lines[1].split()[-3:] == ["0.0987", "2.7000", "0.3000"]
    assert lines[2].startswith("ensemble") and "0.1234" in lines[2]
    assert lines[3] == (f"note: the best single model ({best}) is no member of the ensemble, "
                        "so it was not retrained and has no row above; before retraining: "
                        f"test accuracy {was['accuracy']:.4f}, NLL {was['nll']:.4f}")
    assert lines[4].startswith("note: the exported members were retrained on train + val")


def test_a_probe_only_run_is_not_called_fine_tuned_and_stage_keys_stay_out(tmp_path,
                                                                           figures_not_drawn):
    """A new-user check: a `--sweep probe` run's report said "Fine-tuned candidates: 8
    usable" and "kNN proxy vs fine-tuned accuracy", and its stage table showed fit's keys
    and digests (64 hex digits each)."""
    path = tmp_path / "run"
    make_full_run(path)
    for trial_json in sorted((path / "candidates").glob("*/trial.json")):
        atomic_write_json(trial_json, {**read_json(trial_json), "kind": "probe"})
    Run(path).update(stages={"rank": {"seconds": 12.5, "key": "f" * 64,
                                      "digests": {"rank": "a" * 64}, "reused": False}})
    md, html = report.write_report(path)
    text = md.read_text()
    assert "kNN proxy vs probe accuracy" in text and "fine-tuned accuracy" not in text
    usable = len(candidate.load_pool(path / "candidates", n_val=N_VAL)[0])
    assert f"Candidates: {usable} usable (0 fine-tuned, {usable} probes)" in text
    assert "f" * 64 not in text and "a" * 64 not in text and "reused =" not in text


def test_a_failed_probe_is_not_called_a_fine_tuning_trial(tmp_path, figures_not_drawn):
    """A new-user check (real modules, --sweep default+probe): a probe whose trial failed was
    listed under "Fine-tuning trials that failed"; a probe fine-tunes nothing."""
    path = tmp_path / "run"
    make_full_run(path)
    failed = [t for t in sorted((path / "candidates").glob("*/trial.json"))
              if read_json(t)["status"] == "failed"]
    assert len(failed) == 1
    atomic_write_json(failed[0], {**read_json(failed[0]), "kind": "probe"})
    text = shown(report.write_report(path)[0].read_text())
    assert "Probe trials that failed (1):" in text and "Fine-tuning trials" not in text
    # One of each kind: both counted, and a kind column says which is which.
    write_candidate(path / "candidates",
                    {"trial": "default-0099-alpha", "module": "alpha", "hparams": {},
                     "status": "failed", "reason": "NaN loss", "has_test": True})
    text = shown(report.write_report(path)[0].read_text())
    assert "Trials that failed (2: 1 fine-tuning, 1 probe):" in text
    assert "| trial | module | kind | reason |" in text
    assert re.search(r"\| default-0099-alpha \| alpha \| fine-tuning \| NaN loss \|", text)


def test_an_ensemble_of_one_says_it_is_one_model(tmp_path, figures_not_drawn):
    """A new-user check (ensemble --max-members 1 on a real-module run): the report showed
    "Ensemble: 1 member chosen by greedy selection" and two identical test rows, never saying
    that nothing is averaged and that the two rows are one model's."""
    path = tmp_path / "run"
    make_full_run(path)
    result = ensemble.run_ensemble(path, budget=1)
    assert len(result["members"]) == 1
    trial = result["members"][0]["trial"]
    assert trial == result["test"]["best_single"]["trial"]
    md, html = report.write_report(path)
    for text in (shown(md.read_text()), html.read_text()):
        assert (f"Ensemble: 1 member ({trial}, the best single member itself: nothing is "
                "averaged)") in text
        assert "both rows are the same model's" in text
    several = tmp_path / "several"
    make_full_run(several)
    assert "nothing is averaged" not in report.write_report(several)[0].read_text()


def test_the_robustness_text_names_the_corruptions_and_severities_evaluated(tmp_path,
                                                                            figures_not_drawn):
    """A new-user check: `evaluate --corruptions contrast --severities 1 --out
    RUN/robustness.json` gave a report saying "corrupted copies of it (seed 0; severities
    1-3 …)", and a clean-only evaluation was said to be on corrupted copies too."""
    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    full = fake_robustness(with_single=True)
    one = {**full, "severities": [1],
           "corruptions": {"jpeg": {"1": full["corruptions"]["jpeg"]["1"]}}}
    clean = {**full, "corruptions": {}, "mean_corrupted": None}
    for rob, said in (
            (full, "2 corruptions at severities 1, 2, 3 (ImageNet-C's 1, 3, 5;"),
            (one, "1 corruption at severity 1 (ImageNet-C's 1;"),
            (clean, f"test split ({N_TEST} examples) only, with no corrupted copies")):
        write_evaluation(rob, path / "robustness.json")
        md, html = report.write_report(path)
        for text in (shown(md.read_text()), html_lib.unescape(html.read_text())):
            assert said in text and "severities 1-3" not in text


def test_the_ensemble_size_section_says_the_inference_budget_ended_the_path(tmp_path,
                                                                            figures_not_drawn):
    """A new-user check: after `ensemble --max-members 1` the "Ensemble size" section said
    only "the largest size within one standard error … (at size 1) was kept (size rule
    one-se)": the budget, which ended the greedy path after one pick, chose the size."""
    from hubensemble.cost import Cost, machine_info, write_run_costs

    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    md = report.write_report(path)[0].read_text()
    assert "cut the greedy path short" not in md
    cands = [c for c in candidate.scan(path / "candidates")[0] if c.ok]
    write_run_costs(path, {c.trial: Cost(c.module, None, 32, C, macs=10 ** 8, params=1000,
                                         latency_ms={"1": 2.0, "64": 20.0}) for c in cands},
                    machine_info())
    ensemble.run_ensemble(path, budget=6, max_members=1)
    md = shown(report.write_report(path)[0].read_text())
    section = md[md.index("## Ensemble size"):md.index("## Best single member")]
    assert ("The inference budget cut the greedy path short (the greedy path ended after 1 "
            "pick: no other candidate fits)") in section


def test_a_probe_members_settings_are_its_own(tmp_path, figures_not_drawn):
    """A new-user check: the members table of a probe run listed "lr = 0, … head_init = zero"
    as settings the members were trained with; the stage table showed "done = True"."""
    from hubensemble.sweeps import probe_sweep

    path = tmp_path / "run"
    make_full_run(path)
    ensemble = read_json(path / "ensemble.json")
    members = ensemble["members"]
    fine_tuned = members[0]["hparams"]
    assert fine_tuned["lr"] > 0 and "head_init" not in fine_tuned  # what the rows below expect
    members[-1]["hparams"] = probe_sweep()[2]  # a mixed pool: weight_decay 0.01, lr 0
    atomic_write_json(path / "ensemble.json", ensemble)
    Run(path).update(stages={"rank": {"seconds": 12.5, "done": True}})
    md, _ = report.write_report(path)
    text = md.read_text()
    section = text[text.index("## Ensemble members"):]
    section = section[:section.index("\n## ")]
    probe_row = next(ln for ln in section.splitlines() if members[-1]["trial"] in ln)
    cells = [c.strip() for c in probe_row.strip("|").split("|")]
    header = next(ln for ln in section.splitlines() if ln.startswith("| trial"))
    names = [c.strip() for c in header.strip("|").split("|")]
    row = dict(zip(names, cells))
    assert row["lr"] == "–" and row["weight_decay"] == "0.01" and row["kind"] == "probe"
    assert "head_init" not in section and "lr = 0" not in text
    assert "done = " not in text


def test_an_export_and_evaluation_of_an_earlier_ensemble_are_said_to_be(tmp_path,
                                                                        figures_not_drawn):
    """A new-user check: `tune --sweep probe` and `ensemble` after a fit made a 7-member
    ensemble; the report showed the 2-member export's robustness as if it were this one's."""
    path = tmp_path / "run"
    make_full_run(path)
    members = [m["trial"] for m in read_json(path / "ensemble.json")["members"]]
    assert len(members) >= 2
    old = [members[0], "default-0099-gone"]  # what the export and its evaluation hold

    def report_with(export_members, evaluated, skipped=()):
        (path / "export" / "assets").mkdir(parents=True, exist_ok=True)
        atomic_write_json(path / "export" / "assets" / "hubensemble.json",
                          {"members": [{"trial": t} for t in export_members],
                           "skipped": [{"trial": t, "reason": "gone"} for t in skipped]})
        atomic_write_json(path / "robustness.json", {
            **fake_robustness(with_single=True), "members": [{"trial": t} for t in evaluated]})
        md, _ = report.write_report(path)
        return md.read_text()

    text = report_with(old, old)
    assert text.count("is of an earlier ensemble") == 2
    assert (f"The export is of an earlier ensemble: its 2 members are not the {len(members)} "
            f"of ensemble.json") in text and "default-0099-gone" in text
    assert f"Run `hubensemble export --run {path}` again." in text
    assert "This evaluation is of an earlier ensemble" in text
    # The export made again, its evaluation not: only evaluate is named.
    text = report_with(members, old)
    assert "The export is of an earlier ensemble" not in text
    assert ("This evaluation is of an earlier ensemble" in text
            and f"Run `hubensemble evaluate --model {path}/export" in text)
    # The same members, or all but those the export left out: nothing said.
    assert "earlier ensemble" not in report_with(members, members)
    assert "earlier ensemble" not in report_with(members[1:], members[1:], skipped=members[:1])


def test_an_export_of_an_earlier_ensemble_is_never_named_as_the_runs(tmp_path, figures_not_drawn):
    """A new-user check: run.json's export record named a hand export elsewhere, of an earlier
    ensemble, while RUN/export held this one; the summary and the report named the former
    (`Run.current_export`). With only an earlier one, both say so and name the command."""
    path, served = tmp_path / "run", tmp_path / "served" / "int1b"
    make_full_run(path)
    members = read_json(path / "ensemble.json")["members"]

    def export(folder, trials):
        (folder / "assets").mkdir(parents=True, exist_ok=True)
        (folder / "saved_model.pb").write_bytes(b"")
        atomic_write_json(folder / "assets" / "hubensemble.json",
                          {"members": [{"trial": t} for t in trials], "skipped": []})

    export(path / "export", [m["trial"] for m in members])
    export(served, [members[0]["trial"], "default-0099-gone"])
    Run(path).update(export={**Run(path).export_record(served), "skipped": []})
    assert f"export: {path / 'export'}" in report.summary_table(path).splitlines()
    text = report.write_report(path)[0].read_text()
    assert f"Export (SavedModel): `{path / 'export'}`" in text
    assert "The export is of an earlier ensemble" not in text
    assert Run(path).current_export() == (str(path / "export"), None)
    # Only the earlier one: said, with the command that writes one of this ensemble.
    shutil.rmtree(path / "export")
    assert (f"export: none of this ensemble ({served} is of an earlier one): run `hubensemble "
            f"export --run {path} --out {served}`") in report.summary_table(path).splitlines()
    text = report.write_report(path)[0].read_text()
    assert f"Export (SavedModel): `{served}`" in text
    assert (f"The export is of an earlier ensemble: its 2 members are not the {len(members)}"
            in text and f"Run `hubensemble export --run {path} --out {served}` again." in text)
    assert Run(path).current_export() == (None, str(served))


@pytest.mark.parametrize("edit, named", [
    (lambda ms: [m["trial"] for m in ms], "(its member 0 is a JSON string, expected an object)"),
    (lambda ms: [{k: v for k, v in m.items() if k != "trial"} for m in ms],
     "(member 0's \"trial\" None is not the name of a folder of"),
    (lambda ms: [{**m, "trial": 7} for m in ms],
     "(member 0's \"trial\" 7 is not the name of a folder of"),
    (lambda ms: [], "lists no members; `hubensemble ensemble --run"),
])
def test_a_hand_edited_ensemble_json_beside_an_export_is_named_not_a_traceback(
        tmp_path, edit, named, figures_not_drawn):
    """A new-user check: with an export, report and cost crashed on an ensemble.json edited by
    hand (AttributeError: 'str' object has no attribute 'get'; TypeError '<' between str and
    None): the run's export check read it raw. "members": [] gave "need at least one array to
    stack". Now its one reader's words, and the export is compared with nothing."""
    path = tmp_path / "run"
    make_full_run(path)
    data = read_json(path / "ensemble.json")
    (path / "export" / "assets").mkdir(parents=True)
    (path / "export" / "saved_model.pb").write_bytes(b"")
    atomic_write_json(path / "export" / "assets" / "hubensemble.json",
                      {"members": [{"trial": m["trial"]} for m in data["members"]],
                       "skipped": []})
    atomic_write_json(path / "ensemble.json", {**data, "members": edit(data["members"])})
    assert Run(path).current_export() == (str(path / "export"), None)
    assert Run(path).stale_export() is None
    text = report.write_report(path)[0].read_text()
    assert f"{path / 'ensemble.json'} " in text and named in text
    assert "Traceback" not in text and "need at least one array" not in text


# Class names of a new-user check (folder names of a folder dataset), and more of the same
# kind: HTML, a comment split over two names, Markdown inline and block syntax, entities.
EVIL_CLASSES = ["<img src=x onerror=alert(1)>", "<script>alert(1)<", "![img](https:evil.example)",
                "*star*", "<!-- c", "d -->", "`tick`", "a|b", "<i>three", '<u>tiny&co "q"',
                "# heading", "1. item", "- dash", "&lt;entity", "back\\slash", "line\nbreak",
                "_under_", "digit_0"]
EVIL_MODULE = "<b>mod</b> *m* `x` [l](https://evil.example)"
EVIL_REASON = ("OOM <img src=https://evil.example/a.png> ![i](https://evil.example/b.png) "
               "<!-- hidden --> a_b **bold** ~~gone~~ $x$ &amp;")


class _Doc(HTMLParser):
    """Tags, attributes, comments, text and <code> texts of an HTML document."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.comments, self.text, self.codes = set(), [], [], [], []
        self._code = None
        self.feed(text)
        self.text = " ".join("".join(self.text).split())

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "code":
            self._code = []

    def handle_endtag(self, tag):
        if tag == "code" and self._code is not None:
            self.codes.append("".join(self._code))
            self._code = None

    def handle_data(self, data):
        self.text.append(data)
        if self._code is not None:
            self._code.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def _flat(text):
    return " ".join(str(text).split())


@pytest.fixture(scope="module")
def evil_run(tmp_path_factory):
    """A full run whose class names, task name, a module's name and its failure reason, and
    the run folder's own name hold HTML and Markdown syntax."""
    path = tmp_path_factory.mktemp("evil") / "run `x` <b>&amp; *y*"
    make_full_run(path)
    data = data_section()
    data["task"].update(name="toy <script>alert(2)</script> #", class_names=EVIL_CLASSES)
    Run(path).update(data=data)
    rows = ranking_rows(MODULES) + [{
        "name": EVIL_MODULE, "handle": "/zoo/evil", "status": "failed", "reason": EVIL_REASON,
        "score": None, "dim": None, "examples": None, "seconds": 0.1, "cache_hit": None,
        "stage": "load", "family": "expert", "index": len(MODULES) + 1}]
    Ranking(metric="knn", k=1, rows=rows, selected=list(MODULES),
            selection={"rule": "top_k", "top_k": len(MODULES)}, examples=90).write(path)
    write_candidate(path / "candidates", {"trial": "default-0099-evil", "module": EVIL_MODULE,
                                          "hparams": {}, "status": "failed",
                                          "reason": EVIL_REASON, "has_test": True})
    record = read_json(path / "ensemble.json")
    record["coverage"] = {"test": {"classes": len(EVIL_CLASSES), "covered": 0,
                                   "missing": EVIL_CLASSES}}
    atomic_write_json(path / "ensemble.json", record)
    md, html = report.write_report(path)
    return path, md.read_text(), html.read_text()


def test_untrusted_names_show_literally_in_report_md(evil_run):
    path, md, _ = evil_run
    # The escaped forms (whatever renders them): no raw tag, comment or emphasis survives.
    for raw in ("<img", "<script", "<!--", "<i>", "<b>mod", "*star*", "![img]"):
        assert not re.search(r"(?<!\\)" + re.escape(raw), md), raw
    assert "\\<img src=x onerror=alert(1)>" in md and "\\*star\\*" in md
    assert "\\<!-- c" in md and "!\\[img\\](https:evil.example)" in md
    assert "\\&lt;entity" in md and "\\$x\\$ \\&amp;" in md  # a class name, EVIL_REASON
    assert "digit_0" in md  # an ordinary name is left as it is
    assert f"Run directory: ``{path}``" in md  # a code span holding a backtick
    markdown_it = pytest.importorskip("markdown_it")
    doc = _Doc(markdown_it.MarkdownIt("commonmark").enable("table").render(md))
    # Only the report's own markup: no HTML from a name, no comment, no outside URL.
    assert doc.tags <= {"h1", "h2", "p", "ul", "li", "table", "thead", "tbody", "tr", "th",
                        "td", "code", "strong", "em", "img"}, doc.tags
    assert not doc.comments
    assert all(k in ("src", "alt") for _, k, _ in doc.attrs), doc.attrs
    assert all(v.startswith("report_files/") for _, k, v in doc.attrs if k == "src")
    for name in EVIL_CLASSES + [EVIL_MODULE, EVIL_REASON, "toy <script>alert(2)</script> #"]:
        assert _flat(name) in doc.text, name
    assert "test metrics cover 0 of 18 classes; no test example of: <img src=x" in doc.text
    # The report's code spans still are code, their text literal.
    assert str(path) in doc.codes and f"hubensemble export --run {path}" not in doc.codes


def test_untrusted_names_show_literally_in_report_html(evil_run):
    path, md, html = evil_run
    doc = _Doc(html)
    assert doc.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p",
                        "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code",
                        "strong", "figure", "img", "figcaption", "bdi"}, doc.tags
    assert not doc.comments and self_contained(html)
    for name in EVIL_CLASSES + [EVIL_MODULE, EVIL_REASON]:
        assert _flat(name) in doc.text, name
        assert html_lib.escape(name.split("\n")[0], quote=False) in html, name
    # Backticks in a name are text, not the report's code markup.
    assert "`tick`" in doc.text and "<code>tick</code>" not in html
    assert "<code>x</code>" not in html and "`x`" in doc.text
    assert str(path) in doc.codes  # the report's own code span, the path's backtick kept


def test_stage_times_are_listed_in_the_order_fit_runs_the_stages():
    # A stage first recorded by a later fit (evaluate, after one without corruptions) was
    # listed after report: "export 9.3 s, report 1.4 s, evaluate 24.4 s".
    from hubensemble.report.runsections import fit_order

    stages = {"rank": 1, "tune": 2, "cost": 3, "ensemble": 4, "export": 5, "report": 6,
              "evaluate": 7, "something-new": 8}
    assert [name for name, _ in fit_order(stages)] == [
        "rank", "tune", "cost", "ensemble", "export", "evaluate", "report", "something-new"]


def test_the_stage_table_says_reused_and_stopped_stages_in_the_fit_summarys_words():
    """The report's "Time per stage" showed run.json's fields, "reused = True,
    interrupted_seconds = 13.3" and "reads = <64 hex digits>", where the fit
    summary says "export 48.4 s (earlier runs, reused)" (`report.write.stage_time_line`):
    both say it in one wording (`runsections.stage_time_note`). Records only, no run."""
    from types import SimpleNamespace

    from hubensemble.report.runsections import _stages_section
    from hubensemble.report.write import stage_time_line

    stages = {"export": {"seconds": 48.4, "interrupted_seconds": 13.3, "reused": True,
                         "reads": "b" * 64, "key": "f" * 64, "done": True},
              "rank": {"seconds": 12.5, "reused": True, "reads": "c" * 64},
              "tune": {"seconds": 12.0, "interrupted_seconds": 5.1, "reused": False},
              "cost": {"seconds": 2.0, "reused": False, "workers": 2}, "report": 0.8}
    (table,) = _stages_section(SimpleNamespace(meta={"stages": stages})).blocks
    assert [row[::2] for row in table.rows] == [
        ["rank", "earlier run, reused"],
        ["tune", "5.1 s of it in earlier runs that stopped in it"],
        ["cost", "workers = 2"], ["export", "earlier runs, reused"], ["report", ""],
        ["total", ""]]
    line = stage_time_line(stages)
    for said in ("rank 12.5 s (earlier run, reused)", "tune 12.0 s (5.1 s of it in earlier "
                 "runs that stopped in it)", "export 48.4 s (earlier runs, reused)",
                 "report 0.8 s;"):
        assert said in line, (said, line)


# ---------------------------------------------------------------------------------------------
# Missing and damaged files (a new-user check): each named, the report still written
# ---------------------------------------------------------------------------------------------

def _copy_of(full_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(full_run[0], run)
    return run, full_run[1]


def _report_of(run):
    md_path, html_path = report.write_report(run)
    return shown(md_path.read_text()), md_path.read_text()


@pytest.mark.parametrize("name, doc, named", [
    ("cost.json", {"format": "hubensemble-cost", "candidates": 3},
     "cost.json is damaged: its 'candidates' is a JSON number, expected an object"),
    ("run.json", {"data": "npz:/data/toy.npz", "stages": {}},
     "run.json is damaged (its \"data\" is a JSON string, expected an object)"),
    ("ensemble.json", {"members": "all", "size": 2},
     "ensemble.json is damaged (its \"members\" is a JSON string, expected an array)"),
    ("robustness.json", {"clean": 0.9},
     "its \"clean\" is a JSON number, expected an object"),
    ("distill.json", {"teacher": "ensemble"},
     "its \"teacher\" is a JSON string, expected an object"),
    ("ranking.json", {"modules": [1, 2]},
     "module 1 of \"modules\": a JSON number, expected an object"),
    # A kind no check foresaw still leaves the rest of the report: that section names the file.
    ("run.json", {"stages": {"tune": "slow"}},
     "Time per stage This section could not be drawn (ValueError: could not convert string "
     "to float: 'slow'): {run}/run.json may hold a value of an unexpected kind (edited by "
     "hand, or written by another version); restore it from a copy, or run `hubensemble rank "
     "--catalogue FILE --data npz:/data/toy.npz --out {run}` again, which writes it. If it "
     "still cannot be "
     "drawn after that, the fault is hubensemble's: `hubensemble report --run {run} -v` logs "
     "where it broke."),
])
def test_valid_json_of_the_wrong_kind_is_named_and_the_report_degrades(
        full_run, tmp_path, name, doc, named, figures_not_drawn):
    # Each was an AttributeError traceback (run.json's "data" a string, cost.json's
    # "candidates" a number) or a whole section missing without a word.
    run, _ = _copy_of(full_run, tmp_path)
    path = run / name
    if path.exists() and name != "cost.json":  # the run's own record, one key changed
        doc = {**read_json(path), **doc}
    atomic_write_json(path, doc)
    text, md = _report_of(run)
    assert named.format(run=run) in " ".join(text.split())
    assert "## Ranking" in md and "## Versions" in md  # every section is still there
    if name != "ranking.json":
        assert "sha256 mismatch" in text  # the ranking's failures: the rest still reads
    assert "Nothing failed" not in text


def test_an_unreadable_files_command_is_code_in_report_md(full_run, tmp_path, figures_not_drawn):
    run, _ = _copy_of(full_run, tmp_path)
    (run / "ensemble.json").write_text("{not json")
    (run / "cost.json").write_text("[1]")
    _, md = _report_of(run)
    # The reader's RunError text: its command was shown with escaped, literal backticks.
    assert "\\`" not in md
    # ensemble.json unreadable: the settings of run.json's record of the last ensemble's
    # options (full_run's: a budget of 6; sweepwords.ensemble_options).
    assert f"`hubensemble ensemble --run {run} --budget 6` writes it again" in md
    assert f"`hubensemble cost --run {run}` writes it again" in md


def _member(ens_record, *, best):
    """A member of the ensemble that is (or is not) the best single candidate."""
    best_trial = ens_record["test"]["best_single"]["trial"]
    return next(m["trial"] for m in ens_record["members"] if (m["trial"] == best_trial) == best)


def _reliability_line(text):
    return next(line for line in text.splitlines() if "reliability diagram:" in line)


def test_a_members_missing_validation_table_is_named_once_and_not_left_out(full_run, tmp_path,
                                                                           figures_not_drawn):
    run, ens_record = _copy_of(full_run, tmp_path)
    trial = _member(ens_record, best=True)
    (run / "candidates" / trial / "val_probs.npy").unlink()
    text, _ = _report_of(run)
    line = _reliability_line(text)
    # It said "the test probabilities of T are not in candidates/" twice, test_probs present.
    assert line.count(trial) == 1 and f"candidates/{trial}/val_probs.npy is missing" in line
    assert "test probabilities" not in line
    failures = text[text.index("## What failed and why"):text.index("## Time per stage")]
    assert "Members of ensemble.json the report cannot read (1" in failures
    left_out = failures[failures.index("left out of the ensemble"):failures.index("Members of")]
    assert trial not in left_out  # ensemble.json and the export hold it
    assert "1 of them unreadable (see" in text


@pytest.mark.parametrize("damage, named", [
    # A table of another shape written over it is a file changed since tune wrote it
    # (trial.json's "written" record, 4d10cf5c), said before its shape: tune redoes it.
    ("shape", "candidates/{trial}/test_probs.npy is not the one tune wrote ("),
    ("cut", "test_probs.npy is damaged"),
    ("folder", "candidates/{trial}/ is missing (deleted?)"),
    # It read "candidates/T/no trial.json yet (…)", as if a file of that name.
    # It said "no trial.json yet (still training, or interrupted)" of a finished run's.
    ("record", "candidates/{trial}: its trial record trial.json is missing (deleted since tune "
     "wrote the folder, which it writes whole)"),  # the way on: the "to redo it" column
])
def test_a_members_damaged_test_table_or_missing_folder_is_named(
        full_run, tmp_path, damage, named, figures_not_drawn):
    run, ens_record = _copy_of(full_run, tmp_path)
    trial = _member(ens_record, best=False)
    folder = run / "candidates" / trial
    if damage == "shape":
        atomic_save_npy(folder / "test_probs.npy", np.full((N_TEST, 2), 0.5, np.float32))
    elif damage == "cut":
        data = (folder / "test_probs.npy").read_bytes()
        (folder / "test_probs.npy").write_bytes(data[:len(data) // 2])
    elif damage == "record":
        (folder / "trial.json").unlink()
    else:
        import shutil

        shutil.rmtree(folder)
    text, _ = _report_of(run)
    want = named.format(n=N_TEST, trial=trial)
    assert want in _reliability_line(text) and _reliability_line(text).count(trial) == 1
    failures = text[text.index("## What failed and why"):text.index("## Time per stage")]
    assert "Nothing failed" not in failures and want in failures


def test_a_missing_or_damaged_run_json_is_named_and_the_report_degrades(full_run, tmp_path,
                                                                        figures_not_drawn):
    run, _ = _copy_of(full_run, tmp_path)
    (run / "run.json").unlink()
    text, _ = _report_of(run)
    # It said "run.json records no data: run rank" and "Nothing failed".
    assert f"{run}/run.json is missing" in text and "Nothing failed" not in text
    assert "Not known: run.json is missing" in text
    assert "sha256 mismatch" in text  # the ranking is still shown
    (run / "run.json").write_text('{"data": {')
    text, _ = _report_of(run)  # a damaged run.json refused the whole report (RunError)
    assert f"{run}/run.json is unreadable (JSONDecodeError" in text
    assert "Not known: run.json is unreadable or damaged" in text
    # Its way out is a whole command (a code span): `fit --restart` alone was a flag of a
    # command the reader did not run.
    assert (f"`hubensemble fit --restart --catalogue FILE --data SPEC --out {run}`" in text
            and "\\`" not in text)


def test_missing_test_labels_are_named(full_run, tmp_path, figures_not_drawn):
    run, _ = _copy_of(full_run, tmp_path)
    (run / "labels" / "test.npy").unlink()
    text, _ = _report_of(run)
    assert "On the ? test" not in text and f"On the {N_TEST} test examples" in text
    assert f"{run}/labels/test.npy is missing" in _reliability_line(text)
    assert f"{run}/labels/test.npy is missing: run `hubensemble tune --run {run}`" in text


def test_a_robustness_hint_without_an_export_names_the_export_first(full_run, tmp_path,
                                                                    figures_not_drawn):
    run, _ = _copy_of(full_run, tmp_path)
    (run / "robustness.json").unlink()
    text, _ = _report_of(run)
    # The export was never written (run.json names a path that is not there): evaluate on
    # it would fail.
    assert f"robustness.json is missing): run `hubensemble export --run {run}` (then " \
           "evaluate)" in text


def test_the_cost_section_labels_test_figures_under_retrain_full(tmp_path, figures_not_drawn):
    """A new-user check: after `export --retrain-full` the Overview and the test section gave
    the retrained members' test figures, labelled, but the cost table's "test acc" was still
    the candidates' before retraining, unlabelled. It now gives the measured retrained figures
    first and labels the candidates' (and the figures)."""
    from hubensemble.cost import Cost, machine_info, write_run_costs

    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    cands = [c for c in candidate.scan(path / "candidates")[0] if c.ok]
    write_run_costs(path, {c.trial: Cost(c.module, None, 32, C, macs=int(5e7), params=1000,
                                         latency_ms={"1": 2.0, "64": 20.0}) for c in cands},
                    machine_info())
    e = read_json(path / "ensemble.json")
    members, best = e["members"], e["val"]["best_single"]["trial"]
    assert best in {m["trial"] for m in members}
    # What `export --retrain-full` measured on its retrained members (metrics.test).
    after = {"ensemble": {"accuracy": 0.1234, "nll": 2.5, "ece": 0.2},
             "best_single": {"trial": best, "accuracy": 0.0987, "nll": 2.7, "ece": 0.3},
             "members": []}
    export = path / "export"
    (export / "assets").mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"")

    def section(metrics):
        atomic_write_json(export / "assets" / "hubensemble.json", {
            "members": [{"trial": m["trial"], "weight": m["weight"]} for m in members],
            "skipped": [], "retrain_full": True, "metrics": metrics})
        md = report.write_report(path)[0].read_text()
        return shown(md[md.index("## Inference cost"):md.index("## Ensemble members")]), md

    def test_probs(trial):
        return np.load(path / "candidates" / trial / "test_probs.npy")

    y = np.load(path / "labels" / "test.npy")
    probs = ensemble.ensemble_probs(np.stack([test_probs(m["trial"]) for m in members]),
                                    {i: m["weight"] for i, m in enumerate(members)})
    ens_before = float(np.mean(probs.argmax(1) == y))
    best_before = float(np.mean(test_probs(best).argmax(1) == y))
    text, md = section({"test": after, "test_before_retraining": e["test"]})
    n = len(members)
    rows = [r for r in text.splitlines() if r.startswith("| ensemble") or r.startswith("| best")]
    assert rows[0].startswith(f"| ensemble, retrained on train + val | {n} |")
    assert rows[0].endswith("| 0.1234 | – |")
    assert rows[1].startswith(f"| best single ({best}), retrained on train + val | 1 |")
    assert rows[1].endswith("| 0.0987 | – |")
    assert rows[2].startswith(f"| ensemble, before retraining | {n} |")
    assert f"| {ens_before:.4f} |" in rows[2]
    assert rows[3].startswith(f"| best single ({best}), before retraining | 1 |")
    assert f"| {best_before:.4f} |" in rows[3]
    assert "the rows \"retrained on train + val\" are measured on them" in text
    assert "(chosen: " in md and "; the candidates, before retraining)" in md  # the curve
    # distill compares its student with ensemble.json's figures: said to be before retraining,
    # in the report and in distill's own table.
    from hubensemble.distill import format_distill

    test = {"accuracy": 0.8, "nll": 0.5, "ece": 0.05}
    cost = {"gflops": 0.02, "latency_ms": {"1": 2.0}}
    distilled = {"student": {"module": "small", "test": test, "val": test, "cost": cost,
                             "path": "distill/s", "steps": 40, "seconds": 1.0,
                             "init_from": None},
                 "best_single": {"trial": best, "test": e["test"]["best_single"], "cost": cost},
                 "ensemble": {"members": [m["trial"] for m in members], "test": test,
                              "cost": cost},
                 "teacher": {"export": str(export), "members": [m["trial"] for m in members]},
                 "gap_closed": 0.5, "cost_ratio": 2.0,
                 "gap": {"n": 50, "images": 9, "single_only": 1, "ensemble_only": 10, "z": 2.7,
                         "significant": True, "student_images": 4}}
    atomic_write_json(path / "distill.json", distilled)
    text, _ = section({"test": after, "test_before_retraining": e["test"]})
    assert ("keeps 50% of the ensemble's test-accuracy gain over the best single member, at "
            "1/2.0 of its GFLOPs (the ensemble's and the best single member's test figures "
            "before retraining on train + val).") in text
    # distill now runs the retrained export itself (distill.json's rows "retrained"): the
    # report's sentence no longer calls them figures before retraining.
    ran = {**distilled, "ensemble": {**distilled["ensemble"], "retrained": True},
           "best_single": {**distilled["best_single"], "retrained": True}}
    atomic_write_json(path / "distill.json", ran)
    text_ran, _ = section({"test": after, "test_before_retraining": e["test"]})
    assert ("keeps 50% of the ensemble's test-accuracy gain over the best single member, at "
            "1/2.0 of its GFLOPs.") in text_ran, text_ran
    atomic_write_json(path / "distill.json", distilled)
    table = format_distill(distilled)
    assert f"best single ({best}), before retraining" in table
    assert f"ensemble ({len(members)} members), before retraining" in table
    assert "note: the teacher's members were retrained on train + val" in table
    # An export retrained before its figures were measured: only labelled rows, and why.
    text, _ = section({"test": e["test"]})
    rows = [r for r in text.splitlines() if r.startswith("| ensemble") or r.startswith("| best")]
    assert [r.split(" |")[0] for r in rows] == [
        "| ensemble, before retraining", f"| best single ({best}), before retraining"]
    assert "export again to measure them" in text
    # That export made stale by another ensemble: the advice to write it again keeps
    # --retrain-full, which the user chose for it (it dropped it).
    assert len(members) > 1
    atomic_write_json(export / "assets" / "hubensemble.json", {
        "members": [{"trial": members[0]["trial"], "weight": 1.0}], "skipped": [],
        "retrain_full": True, "metrics": {"test": e["test"]}})
    md = report.write_report(path)[0].read_text()
    overview = shown(md[:md.index("## Data")])
    assert f"Run `hubensemble export --run {path} --retrain-full` again." in overview, overview


@pytest.fixture
def read_only(tmp_path):
    """read_only(folder) -> a view of `folder` this process cannot write in: the folder with
    mode 555, and for root (whom the mode does not stop) a read-only bind mount of it;
    skipped where neither can be made. Undone after the test."""
    import os
    import subprocess

    undo = []

    def make(folder):
        if os.geteuid() != 0:
            folder.chmod(0o555)
            undo.append(lambda: folder.chmod(0o755))
            return folder
        view = tmp_path / f"{folder.name}-ro"
        view.mkdir()
        made = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True,
                              text=True)
        if made.returncode:
            pytest.skip(f"no read-only folder here: {made.stderr.strip()}")
        undo.append(lambda: subprocess.run(["umount", str(view)], capture_output=True))
        made = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)],
                              capture_output=True, text=True)
        if made.returncode:
            pytest.skip(f"no read-only folder here: {made.stderr.strip()}")
        return view

    yield make
    for step in reversed(undo):
        step()


def test_report_on_a_read_only_run_says_it_writes_into_the_run_folder(tmp_path, read_only,
                                                                      in_process, monkeypatch):
    """A new-user check: `report --run RUN` on a read-only run folder said "[Errno 30]
    Read-only file system: '…/run/.fit.lock'; free disk space or fix the permissions" (the
    check for a running fit opened the lock file for writing)."""
    run = tmp_path / "run"
    run.mkdir()
    make_ranked_run(run, MODULES)
    (run / ".fit.lock").write_text("")  # a fit ran here once
    view = read_only(run)
    code, out, err = in_process("report", "--run", view)
    assert code == 2, err
    assert f"the run folder {view} is " in err and "report writes its files into it" in err
    assert f"cp -r {view} COPY" in err and ".fit.lock" not in err
    assert not (run / "report.md").exists()
    # Typed relative, the copy command is absolute and quoted all the same (it
    # said "cp -r rorun/run1 COPY", as typed, unquoted).
    monkeypatch.chdir(view.parent)
    code, out, err = in_process("report", "--run", view.name)
    assert code == 2 and f"cp -r {view} COPY" in err, err
    # A fit running on the folder is still seen through the read-only view of its lock.
    from hubensemble.fileio import file_lock, lock_is_held

    assert not lock_is_held(view / ".fit.lock")
    with file_lock(run / ".fit.lock", timeout=0):
        assert lock_is_held(view / ".fit.lock")


def test_each_renderer_escapes_for_its_own_format(tmp_path, figures_not_drawn):
    """report.md showed "p = 0.31 &gt; 0.05" in the at-chance warning: HTML's escaping in the
    Markdown file, which is read as text too. Markdown escapes with backslashes, only what
    would start markup ("<b>", "&amp;", a line starting ">"), HTML with entities."""
    make_full_run(tmp_path)
    record = read_json(tmp_path / "ensemble.json")
    record["at_chance"] = "accuracy 0.100 (one-sided binomial p = 0.31 > 0.05 on 20 images)"
    atomic_write_json(tmp_path / "ensemble.json", record)
    md, html = (f.read_text() for f in report.write_report(tmp_path))
    assert "p = 0.31 > 0.05 on 20 images" in md and "&gt;" not in md
    assert "p = 0.31 &gt; 0.05 on 20 images" in html
    texts = ["a < b > c & d", "<b>bold</b> &amp; &#62;", "> quoted", "x <3"]
    md = report.render_markdown("t", [report.Section("s", list(texts))])
    assert "a < b > c & d" in md and "\\<b>bold\\</b> \\&amp; \\&#62;" in md
    assert "\\> quoted" in md and "x <3" in md
    markdown_it = pytest.importorskip("markdown_it")
    doc = _Doc(markdown_it.MarkdownIt("commonmark").render(md))
    assert doc.tags <= {"h1", "h2", "p"}, doc.tags
    for text in texts:
        assert text in doc.text, text
    doc = _Doc(report.render_html("t", [report.Section("s", list(texts))]))
    for text in texts:
        assert text in doc.text, text


def test_the_report_command_prints_its_files_absolute(tmp_path, in_process, monkeypatch,
                                                      figures_not_drawn):
    """`hubensemble report --run run` printed "run/report.md", as typed, where `export` and
    every advice print absolute paths; write_report returns them absolute too. A run folder
    named with a newline stays on one line (text.escaped)."""
    run = tmp_path / "a\nrun"
    make_full_run(run)
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process("report", "--run", "a\nrun")
    assert code == 0, err
    assert out.splitlines() == [f"{tmp_path}/a\\nrun/report.md", f"{tmp_path}/a\\nrun/report.html"]
    assert report.write_report("a\nrun") == (run / "report.md", run / "report.html")


def _members_shown(md: str) -> list[str]:
    """The trial ids of report.md's "Ensemble members" table, in its order."""
    part = md.split("## Ensemble members", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (\S+) \| ", part, flags=re.M)[1:]  # (the header row first)


def test_ensemble_writes_the_runs_report_again_once_outside_a_fit(tmp_path, caplog,
                                                                  figures_not_drawn):
    """`ensemble` (as `cost`, `tune`, `export`, `rank`, `distill`) left RUN/report.md and
    report.html showing the ensemble before it (`ensemble --budget 2`, the old
    members in the report). A report the run has is written again at the stage's end
    (refresh.refresh_report); inside a fit it is not (fit writes it once at its end); a
    report that cannot be written is a warning with the command, the ensemble kept."""
    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    md, html = report.write_report(path)
    before = _members_shown(md.read_text())
    assert len(before) > 1
    ensemble.run_ensemble(path, max_members=1)
    now = [m["trial"] for m in read_json(path / "ensemble.json")["members"]]
    assert len(now) == 1 and _members_shown(md.read_text()) == now
    assert now[0] in html.read_text() and all(
        f"<td>{t}</td>" not in html.read_text() for t in set(before) - set(now))
    # Inside a fit of this process (it holds the run's lock as "fit"): left to fit's end.
    text = md.read_text()
    with Run(path).lock("fit"):
        ensemble.run_ensemble(path, budget=6)
    assert md.read_text() == text
    # A run without a report gets none.
    other = tmp_path / "other"
    make_full_run(other, robustness=False)
    assert not (other / "report.md").exists() and not (other / "report.html").exists()
    # One that cannot be written (report.html made a folder): a warning; ensemble.json kept.
    html.unlink()
    html.mkdir()
    caplog.clear()
    ensemble.run_ensemble(path, max_members=2)
    assert len(read_json(path / "ensemble.json")["members"]) == 2
    assert "the report was not written again" in caplog.text
    assert f"call write_report(run_dir={str(path)!r})" in caplog.text  # a Python caller's


def test_an_evaluation_written_into_a_run_writes_its_report_again(tmp_path, figures_not_drawn):
    """`evaluate --model RUN/export --out RUN/robustness.json` left the report showing the
    evaluation before it, where every other stage writes it again (refresh_report). A file
    elsewhere, or another name in the run, leaves the report as it was."""
    path = tmp_path / "run"
    make_full_run(path)
    md, _ = report.write_report(path)
    assert "0.9125" in md.read_text()
    newer = fake_robustness(with_single=True)
    newer["clean"]["ensemble"]["accuracy"] = 0.4375
    write_evaluation(newer, tmp_path / "robustness.json")  # no run there
    write_evaluation(newer, path / "other.json")  # not the report's input
    assert "0.4375" not in md.read_text()
    write_evaluation(newer, path / "robustness.json")
    assert "0.4375" in md.read_text()


def test_every_stage_that_changes_the_report_writes_it_again():
    """The rule's wiring, for the stages too slow to drive here (tune, export, rank, rank
    merge, distill; ensemble and cost are driven for real): each stage function calls
    refresh.refresh_report, and nothing else keeps a copy of the rule."""
    import ast
    import inspect

    from hubensemble import distill, evaluate
    from hubensemble.cost import stage as cost_stage
    from hubensemble.export import stage as export_stage
    from hubensemble.rank import merge, ranking
    from hubensemble.tune import stage as tune_stage

    for fn in (ranking.run_rank, merge.merge_rankings, tune_stage.run_tune,
               cost_stage.run_cost, ensemble.run_ensemble, export_stage.export_ensemble,
               distill.run_distill, evaluate.write_evaluation):
        tree = ast.parse(inspect.getsource(inspect.getmodule(fn)))
        node = next(n for n in ast.walk(tree)
                    if isinstance(n, ast.FunctionDef) and n.name == fn.__name__)
        called = {c.func.id for c in ast.walk(node)
                  if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        assert "refresh_report" in called, fn.__qualname__
    assert not hasattr(distill, "_refresh_report")


def test_the_closing_table_names_the_report_as_the_report_command_does(tmp_path, monkeypatch,
                                                                       figures_not_drawn):
    """summary_table named the report with Path.resolve(), which follows a link to the run
    folder, where `report` and `export` print the path absolute as typed (os.path.abspath):
    one run, two names for its report. One rule now, on one line."""
    real = tmp_path / "disk" / "run"
    make_full_run(real, robustness=False)
    link = tmp_path / "runs"
    link.mkdir()
    (link / "digits").symlink_to(real)
    monkeypatch.chdir(link)
    md, html = report.write_report("digits")
    assert html == link / "digits" / "report.html"  # as `report` prints it
    table = report.summary_table("digits")
    assert f"report: {html} (and report.md)" in table
    assert str(real) not in table.split("report: ", 1)[1]


#: Text GitHub's Markdown links bare (GFM's autolink extension: an extended URL, www and email
#: autolink), each with text around it as a reason or a name holds it.
AUTOLINKED = ["download failed: https://evil.example/m.tar.gz (HTTP 404)", "www.evil.example",
              "see (www.evil.example)", "ask admin@evil.example", "mailto:x@evil.example",
              "ftp://evil.example/x", "*www.evil.example*"]


def test_a_bare_url_or_email_in_a_name_is_no_link_on_github():
    """A bare URL in a failure reason or a name (`https://evil.example`) was a link in
    report.md on GitHub, whose Markdown (GFM) links bare URLs, www. names and e-mail
    addresses, though CommonMark does not. Each trigger is escaped; the text reads the same.
    markdown-it has no GFM autolinking without linkify-it (not installed), so the check
    follows the GFM spec's rules: no "://" after a scheme, no "www." where a www autolink
    may start, no "@" between an address's parts, unescaped."""
    section = report.Section("Failures").add(
        *AUTOLINKED, report.Bullets(AUTOLINKED),
        report.Table(["reason"], [[r] for r in AUTOLINKED]))
    md = report.render_markdown("t", [section])
    body = md.split("## Failures", 1)[1]
    assert not re.search(r"(?<!\\)(?:https?|ftp)://", body)
    assert not re.search(r"(?:^|[\s*_~(|])www\.", body, flags=re.M)
    assert not re.search(r"[\w.+-](?<!\\)@[\w-]", body)
    markdown_it = pytest.importorskip("markdown_it")
    doc = _Doc(markdown_it.MarkdownIt("commonmark").enable("table").render(md))
    assert "a" not in doc.tags
    for text in AUTOLINKED:
        assert text.replace("*", "") in doc.text or text in doc.text, text
    assert shown(body).count("https://evil.example/m.tar.gz") == 3


def test_time_spent_before_a_stage_stopped_is_not_called_an_interruption(tmp_path):
    """A new-user check: after a full disk stopped tune, the next fit's closing table said
    "tune 12.0 s (5.1 s of it before an interruption)", which reads as a Ctrl-C; the count
    (run.json's interrupted_seconds) is of any stop, an error too."""
    from hubensemble.rundir import Run

    make_full_run(tmp_path, robustness=False)
    Run(tmp_path).modify(lambda m: m.update(stages={"tune": {"seconds": 12.0,
                                                             "interrupted_seconds": 5.1}}))
    line = next(t for t in report.summary_table(tmp_path).splitlines()
                if t.startswith("time per stage"))
    assert "tune 12.0 s (5.1 s of it in earlier runs that stopped in it)" in line, line
    assert "interrupt" not in line, line


def test_candidates_at_chance_are_listed_by_an_independent_count(tmp_path, figures_not_drawn):
    """The report flags exactly the candidates whose validation accuracy is not above the
    majority class's rate (one-sided binomial, alpha 0.01) and whose cross-entropy is not
    below 0.98 x the labels' entropy, counted here with SciPy; "kept, as the quick profile
    fails none" only when one of them is quick's (it was said of any)."""
    from scipy.stats import binom

    make_full_run(tmp_path)
    y = np.load(tmp_path / "labels" / "val.npy")
    freq = np.bincount(y, minlength=C) / len(y)
    entropy = -(freq * np.log(freq)).sum()
    flagged = set()
    for cand in candidate.load_pool(tmp_path / "candidates", n_val=len(y))[0]:
        p = cand.val_probs
        correct = int((p.argmax(1) == y).sum())
        ce = -np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-7)))
        if binom.sf(correct - 1, len(y), freq.max()) > 0.01 and ce >= 0.98 * entropy:
            flagged.add(cand.trial)
    assert flagged  # the weakest modules' lower-skill trials learned nothing
    failures = next(s for s in report.build_sections(tmp_path)[1]
                    if s.title == "What failed and why")
    md = report.render_markdown("r", [failures])
    cells = [line.strip("| ").split(" | ") for line in md.splitlines() if line.startswith("| ")]
    rows = {c[0] for c in cells if len(c) == 4 and c[2] in ("yes", "no")}  # trial, module,
    # member, why
    assert f"Candidates at chance on validation ({len(flagged)}):" in shown(md)
    assert rows == flagged, (rows, flagged)
    trial = sorted(flagged)[0]
    record = read_json(tmp_path / "candidates" / trial / "trial.json")
    atomic_write_json(tmp_path / "candidates" / trial / "trial.json",
                      {**record, "profile": "quick"})
    failures = next(s for s in report.build_sections(tmp_path)[1]
                    if s.title == "What failed and why")
    md = shown(report.render_markdown("r", [failures]))
    assert f"({len(flagged)}; kept, as the quick profile fails none)" in md
    # A document of command-line commands: the flags, also when built from Python (it said
    # "the 5-10 steps of profile='quick' …, or fit(restart=True)").
    assert "the 5-10 steps of --profile quick" in md and "fit --restart" in md, md
    assert "profile='" not in md and "restart=True" not in md


def test_many_unbalanced_classes_show_the_worst_first_and_balanced_accuracy(tmp_path,
                                                                            figures_not_drawn):
    """210 classes showed a 210-row per-class table in class order and accuracy alone: on 14
    unbalanced classes (test: 40 of class 0, 4 of each other) the report now leads with the
    10 classes the ensemble does worst on, worst first, keeps all 14 collapsed in report.html
    (<details>), and gives balanced accuracy beside accuracy (scikit-learn's
    balanced_accuracy_score as the reference). 3 balanced classes keep one table and no
    balanced accuracy (full_run's report)."""
    from sklearn.metrics import balanced_accuracy_score

    from hubensemble.metrics import balanced_accuracy
    from hubensemble.rundir import DataArgs

    classes = 14
    names = [f"c{i:02d}" for i in range(classes)]
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(classes), 6)
    y_test = np.repeat(np.arange(classes), [40] + [4] * (classes - 1))
    np.savez(tmp_path / "many.npz", x_train=rng.integers(0, 256, (len(y), 8, 8, 3), np.uint8),
             y_train=y, x_test=rng.integers(0, 256, (len(y_test), 8, 8, 3), np.uint8),
             y_test=y_test, class_names=np.array(names))
    args = DataArgs(spec=f"npz:{tmp_path / 'many.npz'}")
    task = args.load()
    path = tmp_path / "run"
    Run(path).attach_task(task, args)
    skill = np.linspace(4.0, -1.0, classes)  # class 0 is learnt best, class 13 worst
    for i in range(2):
        probs = {}
        for split in ("val", "test"):
            labels = task.split(split).labels
            z = rng.normal(size=(len(labels), classes))
            z[np.arange(len(labels)), labels] += skill[labels] + i
            probs[split] = softmax(z).astype(np.float32)
        record = {"trial": f"default-000{i}-m", "module": "m", "hparams": {}, "status": "ok",
                  "val": split_record(probs["val"], task.val.labels),
                  "test": split_record(probs["test"], task.test.labels), "has_test": True}
        write_candidate(path / "candidates", record, val_probs=probs["val"],
                        test_probs=probs["test"])
    ens = ensemble.run_ensemble(path, budget=2)
    md, html = (p.read_text() for p in report.write_report(path))
    yt = task.test.labels
    cands = {c.trial: c.test_probs for c in candidate.load_pool(
        path / "candidates", n_val=len(task.val), n_test=len(yt))[0]}
    mixed = sum(m["weight"] * cands[m["trial"]] for m in ens["members"])
    single = cands[ens["test"]["best_single"]["trial"]]
    for p in (mixed, single):
        want = balanced_accuracy_score(yt, p.argmax(axis=1))
        assert balanced_accuracy(p, yt) == pytest.approx(want, abs=1e-12)
    text = shown(md)
    test_section = text.split("## Best single member vs ensemble on test")[1].split("\n## ")[0]
    assert "| model | accuracy | balanced accuracy | NLL | ECE |" in test_section
    ens_row = next(r for r in test_section.splitlines() if r.startswith("| ensemble"))
    assert f"| {balanced_accuracy_score(yt, mixed.argmax(axis=1)):.4f} |" in ens_row
    section = text.split("## Per-class accuracy on test")[1].split("\n## ")[0]
    assert f"{balanced_accuracy_score(yt, single.argmax(axis=1)):.4f} for the best single" \
        in section
    # The worst 10 first: the ensemble's per-class recall, lowest first, from scikit-learn.
    recall = [np.mean(mixed.argmax(axis=1)[yt == c] == c) for c in range(classes)]
    # Only classes with a mistake lead (ten rows of 1.0000 said nothing).
    order = [c for c in sorted(range(classes), key=lambda c: (recall[c], -np.sum(yt == c), c))
             if recall[c] < 1][:10]
    rows = [line.split(" | ")[0][2:] for line in section.splitlines()
            if line.startswith("| c") and not line.startswith("| class")]
    assert 0 < len(order) and rows[:len(order)] == [names[c] for c in order]
    assert rows[len(order):] == names  # then every class, in class order
    assert (f"The 10 of the {classes} classes the ensemble does worst on" if len(order) == 10
            else f"The {len(order)} of the {classes} classes the ensemble gets a test example "
            "of wrong") in section
    # The closing table says it too, from the same test probabilities.
    assert ("balanced accuracy (the test classes are unbalanced; the mean of the per-class "
            f"accuracies, each class counted once): ensemble "
            f"{balanced_accuracy_score(yt, mixed.argmax(axis=1)):.4f}, best single "
            f"{balanced_accuracy_score(yt, single.argmax(axis=1)):.4f}") in \
        report.summary_table(path).splitlines()
    # ensemble.json records them (the table reads them there); one written before it did
    # gives the same line, from the candidates' test probabilities.
    line = next(r for r in report.summary_table(path).splitlines() if r.startswith("balanced"))
    recorded = read_json(path / "ensemble.json")
    assert recorded["test"]["ensemble"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(yt, mixed.argmax(axis=1)), abs=1e-6)
    for entry in recorded["test"].values():
        entry.pop("balanced_accuracy", None)
    atomic_write_json(path / "ensemble.json", recorded)
    assert line in report.summary_table(path).splitlines()
    details = html.split("<summary>")[1].split("</details>")[0]
    assert details.startswith(f"All {classes} classes, in class order</summary><table>")
    assert details.count("<tr>") == classes + 1


def test_three_balanced_classes_keep_one_table_in_class_order(full_run):
    _, _, md, html = full_run
    section = shown(md).split("## Per-class accuracy on test")[1].split("\n## ")[0]
    assert [line.split(" | ")[0][2:] for line in section.splitlines()
            if line.startswith("| ") and "---" not in line][1:] == ["cat", "dog", "emu"]
    assert "<details>" not in html


# The candidates' float32 probabilities sum to 1 within float32's rounding only; log_loss
# renormalises them (a change below the 1e-6 compared) and warns.
@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
def test_the_figures_plot_the_figures_the_tables_show(full_run, monkeypatch):
    """Every plotted value is the one the report's tables and ensemble.json give, read from
    matplotlib's artists and checked against an independent reference: scikit-learn's
    accuracy_score and log_loss, the reliability bins of Guo et al. (2017, eq. 3: bin m holds
    confidences in ((m-1)/15, m/15]), Spearman's rho (scipy) and robustness.json's means."""
    from sklearn.metrics import accuracy_score, log_loss

    from hubensemble.report import figures, sections

    path = full_run[0]
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"")  # no PNG: fast
    sections.build_sections(path)
    by_kind = {}
    for fig in drawn:
        ax = fig.get_axes()[0]
        kind = ("reliability" if "ECE" in ax.get_title() else "knn" if "Spearman" in
                ax.get_title() else "curve" if ax.get_ylabel() == "cross-entropy" else
                "robustness" if "severities" in ax.get_ylabel() else ax.get_title())
        by_kind[kind] = fig
    assert set(by_kind) == {"reliability", "knn", "curve", "robustness"}
    e = read_json(path / "ensemble.json")
    yv, yt = np.load(path / "labels" / "val.npy"), np.load(path / "labels" / "test.npy")

    def probs(trial, split):
        return np.load(path / "candidates" / trial / f"{split}_probs.npy").astype(np.float64)

    # The ensemble curve: the greedy path's prefixes, averaged, on validation and test.
    picks = e["picks"]
    for ax, key in zip(by_kind["curve"].get_axes(), ("ce", "accuracy")):
        lines = {line.get_label().split(" ")[0]: line for line in ax.get_lines()}
        for split, y, label in (("val", yv, "validation"), ("test", yt, "test:")):
            mixed = [np.mean([probs(t, split) for t in picks[:i + 1]], axis=0)
                     for i in range(len(picks))]
            want = [log_loss(y, np.clip(p, 1e-7, 1), labels=range(C)) if key == "ce" else
                    accuracy_score(y, p.argmax(axis=1)) for p in mixed]
            np.testing.assert_allclose(lines[label].get_ydata(), want, atol=1e-6)
        assert lines["chosen"].get_xdata()[0] == e["size"]
    # The reliability diagrams: per non-empty bin the accuracy (bar), the mean confidence
    # (red line) and the count; the title's ECE as the test table rounds it.
    counts = {}
    for t in picks[:e["size"]]:
        counts[t] = counts.get(t, 0) + 1
    mixed = sum(n / e["size"] * probs(t, "test") for t, n in counts.items())
    best = probs(e["test"]["best_single"]["trial"], "test")
    for ax, p, who in zip(by_kind["reliability"].get_axes(), (mixed, best),
                          ("ensemble", "best_single")):
        conf, right = p.max(axis=1), p.argmax(axis=1) == yt
        inside = [(conf > (m - 1) / 15) & (conf <= m / 15) for m in range(1, 16)]
        inside = [b for b in inside if b.any()]
        np.testing.assert_allclose([bar.get_height() for bar in ax.patches],
                                   [right[b].mean() for b in inside])
        np.testing.assert_allclose([s[0][1] for s in ax.collections[0].get_segments()],
                                   [conf[b].mean() for b in inside])
        assert [int(t.get_text()) for t in ax.texts] == [int(b.sum()) for b in inside]
        ece = sum(b.sum() / len(yt) * abs(right[b].mean() - conf[b].mean()) for b in inside)
        assert ax.get_title().endswith(f"ECE {ece:.4f}")
        assert e["test"][who]["ece"] == pytest.approx(ece, abs=1e-7)
    # The kNN scatter: (proxy score, best validation accuracy of the module's candidates).
    ax = by_kind["knn"].get_axes()[0]
    points = [tuple(c.get_offsets()[0]) for c in ax.collections]
    scores = {r["name"]: r["score"] for r in read_json(path / "ranking.json")["modules"]}
    trials = [t.name for t in (path / "candidates").iterdir()
              if (t / "val_probs.npy").exists() and len(probs(t.name, "val")) == len(yv)]
    want = [(scores[m], max(accuracy_score(yv, probs(t, "val").argmax(axis=1))
                            for t in trials if t.endswith(f"-{m}")))
            for m in scores if any(t.endswith(f"-{m}") for t in trials)]
    np.testing.assert_allclose(sorted(points), sorted(want))
    rho = spearmanr([x for x, _ in want], [y for _, y in want]).statistic
    assert f"Spearman ρ = {rho:.3f}" in ax.get_title()
    # The robustness bars: clean, then each corruption's mean over its severities.
    rob = read_json(path / "robustness.json")
    want = [np.mean([s[who]["accuracy"] for s in rob["corruptions"][g].values()])
            if g != "clean" else rob["clean"][who]["accuracy"]
            for who in ("ensemble", "best_single") for g in ["clean", *rob["corruptions"]]]
    np.testing.assert_allclose([bar.get_height() for bar in
                                by_kind["robustness"].get_axes()[0].patches], want)


def test_the_overview_names_the_run_directory_absolute_when_given_relative(
        evil_run, monkeypatch):
    """`fit --out runs/gtsrb` wrote "Run directory: `runs/gtsrb`" in the report, a path
    that says nothing to a reader in another folder, beside the absolute export path; it is
    absolute now, as the report's commands name it."""
    path, _, _ = evil_run
    monkeypatch.chdir(path.parent)
    md, _ = report.write_report(path.name)
    assert f"Run directory: ``{path}``" in md.read_text()


def test_the_report_shows_its_times_in_one_form_with_the_utc_offset(evil_run, monkeypatch):
    """The report said "Started: 2026-12-05T20:35:32; report written 2026-12-05 20:49:54":
    two forms and no time zone. Every time it shows is text.shown_time's: local time with
    its offset from UTC, a recorded stamp read as this machine's local time."""
    import time

    from hubensemble.text import shown_time

    path, _, _ = evil_run
    Run(path).update(created="2026-12-05T20:35:32")
    monkeypatch.setenv("TZ", "XST-5:30")  # a POSIX zone: no tz database needed
    time.tzset()
    try:
        assert shown_time("2026-12-05T20:35:32") == "2026-12-05 20:35:32+05:30"
        assert shown_time("2026-12-05T20:35:32-04:00") == "2026-12-05 20:35:32-04:00"
        assert shown_time("not a time") == "not a time"
        md, _ = report.write_report(path)
        text = md.read_text()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.search(r"Started: 2026-12-05 20:35:32\+05:30; report written "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+05:30\b", text), text[:2000]


def test_the_closing_table_says_the_failed_trials_are_done_and_how_to_run_them_again(full_run):
    """tune's summary says a sweep's failed trials are done (the same command reuses them)
    and how to run them again (995ebe6); fit's closing table, which names them, did not."""
    from hubensemble.sweepwords import redo_words
    from hubensemble.text import shell

    path = full_run[0]
    failed = sorted(p.name for p in (path / "candidates").iterdir()
                    if read_json(p / "trial.json")["status"] == "failed")
    lines = report.summary_table(path).splitlines()
    at = next(i for i, line in enumerate(lines) if "of the sweep failed" in line)
    assert len(failed) == 1, failed  # said in the singular (many: test_tune's)
    assert lines[at + 1] == (
        "  running the same command again does not retry the 1 failed trial (a failed trial "
        "counts as finished). To retry it once its cause is fixed, remove its folder "
        f"(`(cd {shell(path / 'candidates')} && rm -r {failed[0]})`), then "
        f"{redo_words(path, failed[0])}"), lines  # the trial's own sweep, not tune's words
    # The report's "What failed and why" says it too, the command as code in both files.
    md, html = full_run[2], full_run[3]
    failures = md[md.index("## What failed and why"):md.index("## Time per stage")]
    command = f"(cd {shell(path / 'candidates')} && rm -r {' '.join(failed)})"
    assert "Running the same command again does not retry the 1 failed trial" in failures
    assert f"`{command}`" in failures, failures
    assert f"<code>{html_lib.escape(command, quote=False)}</code>" in html


def _timeless(text):
    return re.sub(r"report written [^;<\n]*", "report written T", text)


def test_the_report_names_its_run_absolute_however_the_run_was_typed(
        full_run, tmp_path, monkeypatch, figures_not_drawn):
    """`report --run runs/x` wrote the Labels section's Python call
    (`training_image('runs/x', i)`), its CSV file and the note of a missing labels file
    relative to the folder the command ran in, beside the absolute commands of the same
    sentences: a reader of the report in another folder was sent to files that are not
    there, and the same run's report differed by how its folder was typed. Every path is
    absolute now, so both reports are the same but for the time they were written."""
    labelled = _labelled_run(tmp_path)
    damaged, _ = _copy_of(full_run, tmp_path)
    (damaged / "labels" / "test.npy").unlink()
    monkeypatch.chdir(tmp_path)
    for run in (labelled, damaged):
        texts = []
        for typed in (run.name, run):  # relative to the working folder, then absolute
            paths = report.write_report(typed)
            texts.append([_timeless(p.read_text()) for p in paths])
        assert texts[0] == texts[1]
    md = shown(texts[0][0])
    assert f"{damaged}/labels/test.npy is missing: run `hubensemble tune --run {damaged}`" in md
    md = shown((labelled / "report.md").read_text())
    for call in ("training_image", "validation_image"):
        assert f"`hubensemble.labelcheck.{call}({str(labelled)!r}, i)`" in md
    assert f"The file `{labelled / 'labels' / 'to_check.csv'}` lists them too" in md
    # fit's closing table names it as it names the report: absolute.
    assert (f"to check\" and {labelled / 'labels' / 'to_check.csv'}\n"
            in report.summary_table(labelled.name))


def test_an_export_deleted_since_is_said_to_be_gone_not_named_as_the_runs(
        tmp_path, figures_not_drawn):
    """run.json records the run's export; with the folder deleted (or moved) since, the
    Overview still said "Export (SavedModel): `RUN/export`" and fit's closing table
    "export: RUN/export", a model no one can load, without the command that writes it
    again. Both say it is gone now, with that command; the robustness figures, measured on
    it before, say whose they are."""
    path = tmp_path / "run"
    make_full_run(path)  # run.json records RUN/export; the folder is not there
    assert not (path / "export").exists()
    lines = report.summary_table(path).splitlines()
    assert (f"export: none ({path / 'export'}, which run.json records, is gone): run "
            f"`hubensemble export --run {path}`") in lines, lines
    text = _flat(shown(report.write_report(path)[0].read_text()))
    assert (f"Export (SavedModel): none: `{path / 'export'}`, which run.json records, is gone; "
            f"write it again with `hubensemble export --run {path}`.") in text, text[:1500]
    assert f"Export (SavedModel): `{path / 'export'}`" not in text
    robustness = text[text.index("## Robustness"):text.index("## What failed")]
    assert (f"The export these figures were measured on, `{path / 'export'}`, is gone since"
            in robustness), robustness
    # Elsewhere (`fit --export DIR`): the command writes it there again.
    served = tmp_path / "served"
    Run(path).update(export={**Run(path).export_record(served), "skipped": []})
    assert (f"export: none ({served}, which run.json records, is gone): run `hubensemble "
            f"export --run {path} --out {served}`") in report.summary_table(path).splitlines()


def test_a_sweep_whose_every_trial_failed_is_not_sent_to_tune_alone(
        tmp_path, figures_not_drawn):
    """Every trial of a finished sweep failed: the report said "There are no fine-tuned
    candidates yet (candidates/ is empty or missing): run `hubensemble tune --run RUN`" and
    "run `… tune …` (then ensemble)", where candidates/ held the failed trials and that
    command reuses them (a failed trial is done: `sweeps.rerun_failed_words`) and does
    nothing. It says they all failed, and removes their folders before tune runs them
    again, with the run's own sweep and options: a plain `tune --run RUN` runs the default
    sweep (8 other trials for this probe run; a new user's check)."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.text import shell

    path = tmp_path / "run"
    make_ranked_run(path, MODULES)
    Run(path).update(tune={"sweep": "probe", "sweeps": {"probe": {
        "profile": PROFILES["quick"].to_json(), "budget": 3}}})
    atomic_save_npy(path / "labels" / "val.npy", np.zeros(N_VAL, np.int64))
    trials = [f"probe-{i:04d}-{name}" for i, name in enumerate(MODULES)]
    for trial, name in zip(trials, MODULES):
        write_candidate(path / "candidates", {"trial": trial, "module": name, "hparams": {},
                                              "status": "failed", "reason": OOM,
                                              "has_test": False})
    text = _flat(shown(report.write_report(path)[0].read_text()))
    assert "candidates/ is empty or missing" not in text
    said = (f"all {len(trials)} trials of the sweep failed: once their cause is fixed, remove "
            "their folders (the command is under \"What failed and why\"), then run "
            f"`hubensemble tune --run {path} --sweep probe --budget 3 --profile quick`")
    failures = text[text.index("## What failed and why"):text.index("## Time per stage")]
    assert f"`(cd {shell(path / 'candidates')} && rm -r {' '.join(trials)})`" in failures
    knn = text[text.index("## kNN proxy"):text.index("## Labels to check")]
    assert f"There is no usable candidate: {said}." in knn, knn
    size = text[text.index("## Ensemble size"):text.index("## Best single")]
    assert f"There is no ensemble yet (ensemble.json is missing): {said} (then ensemble)." \
        in size, size
    # fit's closing table (`FitResult.summary()`): not `ensemble`, which refuses a pool with
    # no usable candidate ("no usable candidates in RUN/candidates").
    first = report.summary_table(path).splitlines()[0]
    assert first == (f"no ensemble yet: all {len(trials)} trials of the sweep failed: once "
                     "their cause is fixed, remove their folders (the command is below), then "
                     f"run `hubensemble tune --run {path} --sweep probe --budget 3 --profile "
                     f"quick`, then `hubensemble ensemble --run {path}`"), first


def test_a_backend_matplotlib_does_not_know_leaves_the_figures_drawn(tmp_path):
    """MPLBACKEND naming no backend matplotlib knows (a typo, one of another machine's) made
    matplotlib's import fail, and with it every section that has a figure: "This section
    could not be drawn: RUN/ensemble.json holds a value of an unexpected kind (ValueError:
    Key backend: …); `hubensemble ensemble --run RUN` writes it again", blaming the run's
    files, its tables gone too. The figures are drawn on matplotlib's Agg canvas and need no
    backend: the variable is left out of its import, with a warning that names it. A fresh
    Python (matplotlib reads MPLBACKEND at its first import only), one figure (every figure
    goes through the one import: `figures._figure`; TensorFlow's import, which stopped `fit`
    with that traceback, and the zoo's glyphs go through it too,
    `environment.import_matplotlib`)."""
    import io
    import os
    import subprocess
    import sys

    from PIL import Image

    code = ("import sys\nfrom hubensemble.report.figures import plot_curve\n"
            "png = plot_curve([{'size': 1, 'ce': 0.5, 'accuracy': 0.8},\n"
            "                  {'size': 2, 'ce': 0.4, 'accuracy': 0.85}], 2, None)\n"
            "sys.stdout.buffer.write(png)\n"
            "import os, matplotlib.pyplot  # as TensorFlow's import does after it\n"
            "assert os.environ['MPLBACKEND'] == 'no_such_backend'  # put back\n")
    env = {**os.environ, "MPLBACKEND": "no_such_backend", "MPLCONFIGDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          timeout=300)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert Image.open(io.BytesIO(done.stdout)).format == "PNG"
    assert ("MPLBACKEND='no_such_backend' names no backend matplotlib knows (Key backend: "
            "'no_such_backend' is not a valid value for backend); hubensemble's figures need "
            "none") in err, err


def test_counts_of_one_are_said_in_the_singular(tmp_path, figures_not_drawn):
    """A pool of one probe, an ensemble of one pick: the report said "Candidates: 1 usable (0
    fine-tuned, 1 probes)" and "Greedy forward selection … over 1 candidates, …, budget 1
    picks"."""
    path = tmp_path / "run"
    make_ranked_run(path, MODULES)
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, C, N_VAL), rng.integers(0, C, N_TEST)
    atomic_save_npy(path / "labels" / "val.npy", y_val)
    atomic_save_npy(path / "labels" / "test.npy", y_test)
    vp, tp = probs_for(y_val, 1.5, rng), probs_for(y_test, 1.5, rng)
    write_candidate(path / "candidates", {
        "trial": "probe-0000-alpha", "module": "alpha", "kind": "probe", "status": "ok",
        "hparams": {"kind": "probe"}, "val": split_record(vp, y_val),
        "test": split_record(tp, y_test), "has_test": True}, val_probs=vp, test_probs=tp)
    ensemble.run_ensemble(path, budget=1)
    text = _flat(shown(report.write_report(path)[0].read_text()))
    assert "Candidates: 1 usable (0 fine-tuned, 1 probe), 0 failed" in text, text[:1200]
    assert ("Greedy forward selection (Caruana et al., 2004) over 1 candidate, objective "
            "validation ce, budget 1 pick (without replacement)") in text


def test_a_name_longer_than_the_page_may_break_in_report_html(tmp_path, figures_not_drawn):
    """A 300-letter class name (names are limited in nothing but their characters) made its
    table, and the page, about 2,400 px wide in report.html: a word breaks only where it may,
    and a table's column is as wide as its longest word. The page's text may break anywhere
    now (overflow-wrap: anywhere, inherited by every cell, code span and paragraph; unlike
    break-word it narrows the column too), and the name is still shown whole."""
    path = tmp_path / "run"
    make_full_run(path)
    long_name = "L" * 300
    data = data_section()
    data["task"]["class_names"] = [long_name, "dog", "emu"]
    Run(path).update(data=data)
    html = report.write_report(path).html.read_text()
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    body = re.search(r"(?:^|})\s*body\{([^}]*)\}", style).group(1)
    assert "overflow-wrap:anywhere" in body.replace(" ", ""), body
    assert f"<td><bdi>{long_name}</bdi></td>" in html  # whole, in the per-class table


def test_the_per_class_lead_table_lists_only_classes_with_a_mistake():
    """100 classes the ensemble got all right (a real 100-class run): the section led with
    "The 10 of the 100 classes the ensemble does worst on, worst first:" and ten rows of
    1.0000. With no mistake it says so; with fewer classes mistaken than the table holds,
    those alone, and the others are said to be all right. The full table stays."""
    from types import SimpleNamespace

    from hubensemble.report.perclass import perclass_section

    classes = 12
    names = [f"k{i}" for i in range(classes)]
    files = SimpleNamespace(task={"class_names": names})
    y = np.repeat(np.arange(classes), 5)
    right = np.eye(classes, dtype=np.float32)[y]
    text = _flat(report.render_markdown("t", [perclass_section(files, [("ensemble", right, y)])]))
    assert "does worst on" not in text
    assert ("The ensemble predicts every test example of all 12 classes right "
            "(accuracy 1.0000 each).") in text
    assert "All 12 classes, in class order" in text
    wrong = right.copy()
    for i, to in ((5, 4), (6, 4), (20, 9)):  # class 1 twice, class 4 once
        wrong[i] = np.eye(classes)[to]
    text = _flat(report.render_markdown("t", [perclass_section(files, [("ensemble", wrong, y)])]))
    recall = [np.mean(wrong.argmax(axis=1)[y == c] == c) for c in range(classes)]
    mistaken = sorted((c for c in range(classes) if recall[c] < 1), key=lambda c: recall[c])
    assert [names[c] for c in mistaken] == ["k1", "k4"]
    assert ("The 2 of the 12 classes the ensemble gets a test example of wrong, worst first "
            "(the other 10: every one right): | class |") in text, text
    lead = text.split("worst first")[1].split("All 12 classes")[0]
    assert re.findall(r"\| (k\d+) \| 5 \|", lead) == ["k1", "k4"]


def test_a_members_hand_edited_hyperparameters_are_named_as_export_refuses_them(
        full_run, tmp_path, figures_not_drawn):
    """A member's trial.json edited by hand ("lr": "0.01") showed in the members table as the
    string 0.01 with no word that export and distill refuse it; now the report names the
    file, why and the way on, in the words of Candidate.read_hparams (export's and distill's
    reader), its tune command as code."""
    run, ens_record = _copy_of(full_run, tmp_path)
    trial = _member(ens_record, best=False)
    folder = run / "candidates" / trial
    record = read_json(folder / "trial.json")
    atomic_write_json(folder / "trial.json", {**record,
                                              "hparams": {**record["hparams"], "lr": "0.01"}})
    text, md = _report_of(run)
    members = text[text.index("## Ensemble members"):]
    members = members[:members.index("\n## ")]
    with pytest.raises(RunError) as refused:  # what export and distill say
        candidate.read_candidate(run / "candidates", trial).read_hparams()
    assert "lr must be a number (got '0.01')" in str(refused.value)
    assert f"{folder / 'trial.json'}: its hyperparameters cannot be read" in members
    assert "Export and distill refuse such a member" in members
    # The trial's own sweep (a plain `tune --run RUN` runs the default one; this run
    # records none but the trial's): a code span, not escaped.
    assert (f"(run `hubensemble tune --run {run} --sweep default`, then `hubensemble ensemble "
            f"--run {run} --budget 6`") in md, md  # the ensemble's own settings
    assert members.count("cannot be read") == 1  # the other members' files read


def test_per_class_test_accuracies_are_not_shown_under_no_test_metrics(full_run, tmp_path,
                                                                       figures_not_drawn):
    """ensemble.json without "test" (an older file, or edited) beside the members' test
    predictions: the test section said "No test metrics" right above the per-class test
    accuracies drawn from those predictions. It says where they come from, and the way on."""
    from sklearn.metrics import confusion_matrix

    run, ens_record = _copy_of(full_run, tmp_path)
    doc = read_json(run / "ensemble.json")
    doc.pop("test"), doc.pop("test_curve", None)
    atomic_write_json(run / "ensemble.json", doc)
    text, _ = _report_of(run)
    test = " ".join(text[text.index("## Best single"):text.index("## Per-class")].split())
    assert "No test metrics" not in test
    assert (f"{run}/ensemble.json records no test metrics, but the members' test predictions "
            f"({run}/candidates/*/test_probs.npy) and test labels are there" in test)
    # With the ensemble's own settings (full_run's ensemble.json: a budget of 6).
    assert f"`hubensemble ensemble --run {run} --budget 6` records the ensemble's" in test
    # The per-class rows are what those files give (scikit-learn's confusion matrix).
    y = np.load(run / "labels" / "test.npy")
    probs = sum(m["weight"] * np.load(run / "candidates" / m["trial"] / "test_probs.npy")
                for m in doc["members"])
    diag = confusion_matrix(y, probs.argmax(1), labels=range(C)).diagonal()
    for name, right, n in zip(["cat", "dog", "emu"], diag, np.bincount(y, minlength=C)):
        assert f"| {name} | {n} | {right / n:.4f} |" in text


def test_right_to_left_class_names_are_isolated_in_html_and_keep_markdown_tables(
        full_run, tmp_path, figures_not_drawn):
    """A Hebrew or Arabic class name took the numbers after it into its own direction
    ("שלום 14" showed as "14 שלום") and two such names in a list read in the other order:
    report.html wraps each class name in <bdi>; report.md's tables keep their columns."""
    run, _ = _copy_of(full_run, tmp_path)
    names = ["שלום", "cat", "مرحبا"]
    data = data_section()
    data["task"]["class_names"] = names
    Run(run).update(data=data)
    md_path, html_path = report.write_report(run)
    page, md = html_path.read_text(), md_path.read_text()
    cells = []

    class Cells(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("td", "th"):
                cells.append([])
            elif cells:
                cells[-1].append(tag)

        def handle_data(self, data):
            if cells:
                cells[-1].append(data)

    Cells().feed(page[page.index("<h2>Per-class accuracy on test"):])
    for name in names:  # its row's class cell: the name alone, isolated
        assert ["bdi", name] in cells
    assert page.count("<bdi>") == page.count("</bdi>")
    data_html = page[page.index("<h2>Data"):page.index("<h2>Ranking")]
    assert f"<td>3: <bdi>{names[0]}</bdi>, <bdi>cat</bdi>, <bdi>{names[2]}</bdi></td>" in data_html
    # Every Markdown table row has as many cells as its header; the names as they are.
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(widths) == 1, block
    assert all(f"| {name} | " in md for name in names) and "bdi" not in md


def test_a_member_tune_would_reuse_is_redone_with_its_folder_deleted_first(
        full_run, tmp_path, figures_not_drawn):
    """A member whose test table was damaged after ensembling: the report said "run `tune`
    to redo a missing or damaged trial", but tune reuses a trial whose files are all there
    (tune's resume rule, `sweepsummary.finished_candidate`), so it did nothing. Its row says
    to delete the folder, then run its own sweep's command, after which tune runs it."""
    from hubensemble.sweepsummary import finished_candidate

    run, ens_record = _copy_of(full_run, tmp_path)
    trial = _member(ens_record, best=False)
    table = run / "candidates" / trial / "test_probs.npy"
    table.write_bytes(table.read_bytes()[:100])
    # Cut short since tune wrote it (trial.json's "written"): tune redoes it.
    assert finished_candidate(run / "candidates", trial) is None
    text, _ = _report_of(run)
    failures = " ".join(text[text.index("## What failed and why"):
                             text.index("## Time per stage")].split())
    row = next(line for line in failures.split("| ") if line.startswith(trial))
    # tune redoes it as it is: its row names the command alone (it said to delete the
    # folder first, which tune no longer needs: 397's check).
    assert (f"run `hubensemble tune --run {run} --sweep default` |" in failures
            and f"delete `{run / 'candidates' / trial}`" not in failures), row
    assert "tune reuses a trial whose files are all there" not in failures
    assert "tune redoes a trial whose file is missing or changed since it wrote it" in failures
    assert "to redo a missing or damaged trial" not in failures
    shutil.rmtree(run / "candidates" / trial)  # the step it names: now tune runs the trial
    text, _ = _report_of(run)
    assert f"| {trial} | candidates/{trial}/ is missing (deleted?) | run `hubensemble tune " \
           f"--run {run} --sweep default` |" in text


def test_a_damaged_ensemble_json_is_said_once_and_referred_to_after(
        full_run, tmp_path, figures_not_drawn):
    """The same sentence on a damaged ensemble.json stood in five sections; it is said in
    "Ensemble size", the first that reads the file, and each later one points to it (the
    failures section still lists it among the damaged files)."""
    run, _ = _copy_of(full_run, tmp_path)
    atomic_write_json(run / "ensemble.json", {"members": "all", "size": 2})
    text, _ = _report_of(run)
    damage = (f"{run}/ensemble.json is damaged (its \"members\" is a JSON string, expected an "
              "array)")
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}
    assert damage in sections["Ensemble size"]
    later = ["Best single member vs ensemble on test", "Per-class accuracy on test",
             "Inference cost", "Ensemble members"]
    for title in later:
        assert damage not in sections[title], title
        assert ("Not shown: ensemble.json is unreadable or damaged (see \"Ensemble size\")."
                in sections[title]), title
    assert damage in sections["What failed and why"]
    assert text.count(damage) == 2


def test_a_hand_edited_number_is_named_with_its_file_and_field(full_run, tmp_path,
                                                               figures_not_drawn):
    """ensemble.json edited so a test accuracy is "x" and a val_curve point NaN, and a
    robustness.json figure true: the report showed "x", "–" and "CE nan" with no word of
    why. Each section that shows one names the file and the field, shows "–" and says
    which command writes the file again; the other figures are the files' own."""
    import json

    run, _ = _copy_of(full_run, tmp_path)
    doc = read_json(run / "ensemble.json")
    kept_nll = doc["test"]["best_single"]["nll"]
    doc["test"]["best_single"]["accuracy"] = "x"
    best = doc["size_rule"]["best_size"]
    doc["val_curve"][best - 1]["ce"] = float("nan")
    (run / "ensemble.json").write_text(json.dumps(doc))  # NaN: as Python's json writes it
    rob = read_json(run / "robustness.json")
    rob["corruptions"]["jpeg"]["2"]["ensemble"]["nll"] = True
    atomic_write_json(run / "robustness.json", rob)
    text, _ = _report_of(run)
    sections = {part.split("\n", 1)[0]: " ".join(part.split())
                for part in text.split("\n## ")[1:]}
    tail = ": not a finite number as its writer writes (shown as \"–\", left out of the plots)"
    assert (f"Note: in {run}/ensemble.json, \"val_curve[{best - 1}].ce\" is NaN{tail}"
            in sections["Ensemble size"])
    assert f"of the best validation CE (at size {best}) was kept" in sections["Ensemble size"]
    test = sections["Best single member vs ensemble on test"]
    assert (f"Note: in {run}/ensemble.json, \"test.best_single.accuracy\" is a JSON string "
            f"\"x\"{tail}" in test
            and f"`hubensemble ensemble --run {run} --budget 6` writes it again" in test)
    assert f"| – | {kept_nll:.4f} |" in test and "| x |" not in test
    robustness = sections["Robustness to corruptions"]
    assert (f"Note: in {run}/robustness.json, \"corruptions['jpeg']['2'].ensemble.nll\" is a "
            f"JSON boolean true{tail}" in robustness)
    assert "| jpeg | 2 | 0.7500 | 0.7000 | – |" in robustness
    assert "Note: in" not in sections["Ensemble members"]


def test_fit_says_a_hand_damaged_ensemble_json_in_its_one_readers_words(tmp_path, caplog):
    """fit's stage records read ensemble.json raw (stagerecords, not ensemblefile): a member
    listed twice by hand was "the result of ensemble is not the one fit recorded (another
    command rewrote it since)". Through the one reader it is named as damage, in its words
    (the file, the member); a member whose trial.json names another module since is that
    member alone, not every member. Files only, as fit records and compares them."""
    import logging

    from hubensemble.candidate import write_candidate
    from hubensemble.stagerecords import file_digest, mark, members_digest, stage_done

    run = Run(tmp_path / "run")
    trials = ["default-0000-m0", "default-0001-m0"]
    for trial in trials:
        write_candidate(run.candidates, {"trial": trial, "status": "ok", "module": "m0"},
                        val_probs=np.full((4, 2), 0.5, np.float32))
    atomic_write_json(run.ensemble_json, {"members": [{"trial": t, "module": "m0"}
                                                      for t in trials]})

    def now():
        return {"export": "e", "ensemble": file_digest(run.ensemble_json),
                "members": members_digest(run)}

    mark(run, "export", "k", 1.0, digests=now())
    assert stage_done(run, "export", "k", now()) and set(now()["members"]) == set(trials)
    good = read_json(run.ensemble_json)
    atomic_write_json(run.ensemble_json, {"members": [good["members"][0]] * 2})
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        assert not stage_done(run, "export", "k", now())
    assert (f"export: {run.ensemble_json} is damaged (member 1's \"trial\" '{trials[0]}' is "
            "member 0's too); run_ensemble(run_dir=" in caplog.text), caplog.text
    assert "another command rewrote" not in caplog.text
    # The file as fit wrote it, one member's trial.json of another module since.
    atomic_write_json(run.ensemble_json, good)
    write_candidate(run.candidates, {"trial": trials[0], "status": "ok", "module": "m1"},
                    val_probs=np.full((4, 2), 0.5, np.float32))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        assert not stage_done(run, "export", "k", now())
    assert "member 0's \"module\" 'm0' is not 'm1'" in caplog.text and trials[1] not in \
        caplog.text, caplog.text


def test_the_data_row_shows_what_to_pass_to_read_the_same_data_again(tmp_path):
    """The Data section's "data spec" row showed the spec alone (`tfds:smallnorb:2.0.0`),
    not the split strings, label feature and data dir the run read it with (run.json
    records them). It shows them as one line of the flags that read it again: parsed by
    the command line's own parser, they give back the run's record."""
    import shlex

    from hubensemble.cli import build_parser
    from hubensemble.dataargs import DataArgs

    make_ranked_run(tmp_path, MODULES)
    folder = tmp_path / "tfds data"  # a space: the words are shell-quoted
    recorded = DataArgs(spec="tfds:smallnorb:2.0.0", data_dir=str(folder), seed=3,
                        splits={"train": "train[:800]", "val": "train[800:1000]",
                                "test": "test[:50]"}, label_key="label_azimuth")
    Run(tmp_path).update(data={**data_section(), "args": recorded.to_json()})
    md = report.write_report(tmp_path)[0].read_text()
    (row,) = [line for line in md.splitlines() if line.startswith("| data spec |")]
    assert row.count("`") == 2, row  # one line, one code span
    words = shlex.split(row.split("`")[1])
    parsed = build_parser().parse_args(["rank", "--catalogue", "c.yaml", "--out", "o", *words])
    assert (parsed.data, parsed.data_dir, dict(parsed.splits), parsed.label_key,
            parsed.data_seed) == (recorded.spec, str(folder), recorded.splits,
                                  "label_azimuth", 3)
    # At the defaults the spec alone reads it again; data from Python shows its spec as it is.
    for args, cell in (({"spec": "npz:/data/toy.npz", "seed": 0}, "`--data npz:/data/toy.npz`"),
                       ({"spec": "arrays (Python)", "reloadable": False}, "`arrays (Python)`")):
        Run(tmp_path).update(data={**data_section(), "args": args})
        md = report.write_report(tmp_path)[0].read_text()
        assert f"| data spec | {cell} |" in md, [r for r in md.splitlines() if "data spec" in r]


def test_the_reports_ensemble_commands_keep_the_ensembles_own_settings(full_run, tmp_path,
                                                                       figures_not_drawn):
    """The report's `ensemble` commands (RunFiles.cmd, and fit's closing table) were a plain
    `hubensemble ensemble --run RUN`, which selects under the defaults: an ensemble chosen with
    --budget 3 --size-rule paper came back of up to 15 by one-se. They keep the settings
    ensemble.json records, as the export's and distill's refusals do. Fails before: the
    command ends at the run folder."""
    from hubensemble.report.runfiles import load_run

    run, _ = _copy_of(full_run, tmp_path)
    doc = read_json(run / "ensemble.json")
    doc["budget"], doc["size_rule"] = 3, {**doc["size_rule"], "rule": "paper"}
    doc.pop("test"), doc.pop("test_curve", None)  # so the test section gives the command
    atomic_write_json(run / "ensemble.json", doc)
    again = f"hubensemble ensemble --run {run} --budget 3 --size-rule paper"
    assert load_run(run).cmd("ensemble") == again
    text, _ = _report_of(run)
    assert f"`{again}` records the ensemble's" in " ".join(text.split())


def test_a_trial_outside_the_last_plan_is_redone_under_a_budget_that_plans_it(tmp_path):
    """After `tune --budget 8` then `tune --budget 4` (run.json records the last call's plan,
    0000-0003), the "to redo it" column said `--sweep default --budget 4 --profile quick` for
    default-0006 without trial.json: that plan reuses 0000-0003 and leaves 0006 undone. It
    names the budget whose plan holds the trial (sweepwords.redo_budget: 8, a whole group of
    4), as ensemble's redo words do. Fails before: --budget 4. Every unusable trial of one
    sweep is told that one command (18a6b74), default-0001 too, whose plan of 4 would leave
    default-0006 undone."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.report.failures import redo_step
    from hubensemble.report.runfiles import load_run

    run = tmp_path / "run"
    atomic_write_json(run / "run.json", {"tune": {"sweep": "default", "sweeps": {
        "default": {"budget": 4, "seed": 0, "profile": PROFILES["quick"].to_json(),
                    "trials": [f"default-000{i}-m" for i in range(4)]}}}})
    for trial in ("default-0001-m", "default-0006-m"):
        (run / "candidates" / trial).mkdir(parents=True)
    files = load_run(run)
    words = {t: str(redo_step(files, t).parts[-1].text) for t in ("default-0001-m",
                                                                  "default-0006-m")}
    assert words["default-0006-m"].endswith("--sweep default --budget 8 --profile quick"), words
    # One command redoes both: the plan of 4 holds 0001 but not 0006.
    assert words["default-0001-m"] == words["default-0006-m"], words


@pytest.mark.parametrize("n", [1, 2])
def test_data_rows_count_their_nouns_without_parenthesised_plurals(n):
    """The data section's rows said "1 copy(ies) in 1 group(s)", "72 example(s)", "1 TIFF
    image(s)": each count now takes its noun in the singular for 1, the plural else
    (text.counted), in every row of `accounting_rows` and `decoding_rows`. Fails before:
    "(s)" and "(ies)" in the rows."""
    from hubensemble.report.datarows import accounting_rows, decoding_rows

    one = n == 1
    record = {"source": "folder:/d (class folders)", "files": n + 1, "sizes": {"train": n},
              "skipped": [["/d/cat/x.png", "not an image"]],
              "dropped": [[f"/d/cat/{i}.png", "a copy"] for i in range(n)],
              "duplicates": {"copies": n, "groups": n, "conflicting_labels": n,
                             "examples": [["/d/cat/0.png", "/d/dog/0.png"]],
                             "conflicting_examples": [[["/d/cat/0.png", "cat"],
                                                       ["/d/dog/0.png", "dog"]]]},
              "oriented": {"count": n, "examples": [["/d/cat/o.jpg", 6]]},
              "turned": {"count": n, "examples": [["/d/cat/t.tif", 8]]}}
    rows = dict(accounting_rows(record) + decoding_rows(record, skipped=False))
    text = "\n".join(rows.values())
    assert "(s)" not in text and "(ies)" not in text, text
    assert rows["files read"].startswith(
        f"{n + 1}: {n} example{'' if one else 's'}, 1 skipped"), rows
    assert rows["files read"].endswith(f"{n} duplicate{'' if one else 's'} dropped"), rows
    assert rows["exact duplicates"].startswith(
        f"{n} cop{'y' if one else 'ies'} in {n} group{'' if one else 's'} of equal pixels")
    assert f"; {n} group{'' if one else 's'} with different labels" in rows["exact duplicates"]
    assert rows["dropped by --dedupe"].startswith(f"{n} cop{'y' if one else 'ies'} (e.g. ")
    assert rows["orientation tag"].startswith(f"{n} image{'' if one else 's'} with the tag")
    assert rows["TIFF orientation"].startswith(f"{n} TIFF image{'' if one else 's'} turned")
    record["duplicates"]["copies"] = 0  # --dedupe dropped every copy
    assert dict(accounting_rows(record))["exact duplicates"].startswith(
        f"none left; {n} group{'' if one else 's'} had different labels")


class _OutsideBdi(HTMLParser):
    """The text of an HTML page outside <bdi> elements (and outside <style>/<title>)."""

    def __init__(self):
        super().__init__()
        self.depth, self.skip, self.text = 0, 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag == "bdi"
        self.skip += tag in ("style", "title")

    def handle_endtag(self, tag):
        self.depth -= tag == "bdi"
        self.skip -= tag in ("style", "title")

    def handle_data(self, data):
        if not self.depth and not self.skip:
            self.text.append(data)


def test_right_to_left_class_names_in_sentences_are_isolated(full_run, tmp_path,
                                                             figures_not_drawn):
    """A new-user check with Hebrew class names: the coverage, few-examples and majority
    notes (data.coverage's sentences: "no test example of: ערב טוב", "'שלום' 3", "of
    class 'בוקר'") were plain text in report.html, where a right-to-left name carries the
    count after it into its direction and two names next to each other swap. Every
    right-to-left letter of report.html is now inside a <bdi>; report.md says the same
    words. Fails before: the Overview's and the test section's notes hold them outside."""
    import json
    import unicodedata

    run, _ = _copy_of(full_run, tmp_path)
    names = ["בוקר", "שלום", "ערב טוב"]
    meta = read_json(run / "run.json")
    meta["data"]["task"]["class_names"] = names
    atomic_write_json(run / "run.json", meta)
    doc = read_json(run / "ensemble.json")
    doc.pop("coverage", None)  # from the labels below, with run.json's names
    atomic_write_json(run / "ensemble.json", doc)
    y = np.array([1] * 3 + [0] * (N_TEST - 3))  # no test example of class 2, 3 of class 1
    atomic_save_npy(run / "labels" / "test.npy", y)
    text, md = _report_of(run)
    html = (run / "report.html").read_text()
    for words in ("no test example of: ערב טוב", "'שלום' 3", "are of class 'בוקר'"):
        assert words in text, words
    for words in ("no test example of: <bdi>ערב טוב</bdi>", "<bdi>'שלום'</bdi> 3",
                  "are of class <bdi>'בוקר'</bdi>"):
        assert words in html, words
    parser = _OutsideBdi()
    parser.feed(html)
    outside = [t for t in parser.text
               if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in t)]
    assert not outside, json.dumps(outside, ensure_ascii=False)


def test_the_overviews_dash_for_a_hand_edited_test_figure_points_at_its_note(
        full_run, tmp_path, figures_not_drawn):
    """ensemble.json's test.best_single.accuracy edited to "x": the Overview said "Test
    accuracy 0.8200 (ensemble) vs – (best single)" with no word of why, the why being three
    sections below. It names the field and points at the note of the test section.
    Fails before: no "see the note" in the Overview."""
    import json

    run, _ = _copy_of(full_run, tmp_path)
    doc = read_json(run / "ensemble.json")
    doc["test"]["best_single"]["accuracy"] = "x"
    doc["test"]["ensemble"]["nll"] = float("nan")
    (run / "ensemble.json").write_text(json.dumps(doc))
    text, _ = _report_of(run)
    overview = " ".join(text.split("\n## ")[1].split())
    assert (f"Test accuracy {doc['test']['ensemble']['accuracy']:.4f} (ensemble) vs – (best "
            f"single); NLL – vs {doc['test']['best_single']['nll']:.4f} (\"–\": ensemble.json's "
            "\"test.best_single.accuracy\", \"test.ensemble.nll\" are not a finite number; see "
            "the note in \"Best single member vs ensemble on test\")") in overview, overview
    test = text.split("\n## Best single member vs ensemble on test")[1].split("\n## ")[0]
    assert "\"test.best_single.accuracy\" is a JSON string \"x\"" in test
    # The ensemble's figures as they are: no note.
    _, _, md, _ = full_run
    assert "see the note" not in md.split("\n## ")[1]


def _hand_ece(probs, y, bins):
    """Guo et al. (2017, eq. 3) by a loop over the bins ((lo, hi], 0 in the first)."""
    probs = np.asarray(probs, np.float64)
    conf, right, total = probs.max(axis=1), probs.argmax(axis=1) == y, 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf <= hi) & ((conf > lo) | (b == 0))
        if inside.any():
            total += inside.sum() / len(y) * abs(right[inside].mean() - conf[inside].mean())
    return total


def _edge_cases():
    rng = np.random.default_rng(7)
    y10 = rng.integers(0, 10, 200)
    random10 = rng.dirichlet(np.full(10, 0.3), 200).astype(np.float32)
    never = rng.dirichlet(np.ones(4), 120)
    never[:, 3] = 0.0  # class 3 never predicted (and its examples all wrong)
    never /= never.sum(axis=1, keepdims=True)
    exact = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # 0/1, two wrong
    # Confidences exactly on bin edges (k/15) and on 1/2 (a tie, the lower index wins).
    edges = np.array([[3 / 15, 12 / 15], [5 / 15, 10 / 15], [0.5, 0.5], [14 / 15, 1 / 15],
                      [13 / 15, 2 / 15], [1.0, 0.0]])
    return {
        "10 classes, float32": (random10, y10),
        "10 classes, float16": (random10.astype(np.float16), y10),
        "one class": (np.ones((5, 1)), np.zeros(5, int)),
        "a class never predicted": (never, rng.integers(0, 4, 120)),
        "exactly 0 and 1": (exact, np.array([0, 0, 1, 1])),
        "on the bin edges": (edges, np.array([1, 0, 1, 0, 1, 1])),
        # 14 of the 15 bins hold no example.
        "one full bin": (np.tile([[0.9, 0.1]], (8, 1)), np.array([0] * 7 + [1])),
    }


@pytest.mark.parametrize("case", list(_edge_cases()))
def test_ece_nll_and_the_reliability_bins_match_independent_references(case):
    """metrics.ece against Guo et al.'s formula by a loop here, the reliability diagram's
    bins (metrics.confidence_bins) against scikit-learn's calibration_curve (uniform bins;
    a confidence on an edge joins the lower bin, as Guo et al.'s (lo, hi]), metrics.nll
    against scikit-learn's log_loss of the probabilities floored at 1e-7 (a hand formula for
    one class, which log_loss refuses), on edge cases. Tests only."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import log_loss

    from hubensemble import metrics

    probs, y = _edge_cases()[case]
    p64 = np.asarray(probs, np.float64)
    for bins in (15, 10, 1):
        assert metrics.ece(probs, y, bins) == pytest.approx(_hand_ece(p64, y, bins),
                                                            abs=1e-12), bins
    rel = report.reliability(probs, y, bins=15)
    right = (p64.argmax(axis=1) == y).astype(int)
    full = rel["count"] > 0
    assert rel["count"].sum() == len(y)
    if 0 < right.sum() < len(y):  # calibration_curve needs both outcomes
        acc, conf = calibration_curve(right, p64.max(axis=1), n_bins=15, strategy="uniform")
        np.testing.assert_allclose(rel["accuracy"][full], acc, atol=1e-12)
        np.testing.assert_allclose(rel["confidence"][full], conf, atol=1e-12)
    assert np.isnan(rel["accuracy"][~full]).all()
    true_p = p64[np.arange(len(y)), y]
    if p64.shape[1] > 1:
        floored = np.clip(p64, 1e-7, 1)
        # Rows summing to 1 as log_loss asks: floored (and float16) rows do within 1e-3.
        want = log_loss(y, floored / floored.sum(axis=1, keepdims=True),
                        labels=range(p64.shape[1]))
        assert metrics.nll(probs, y) == pytest.approx(want, rel=1e-3)
    assert metrics.nll(probs, y) == pytest.approx(np.mean(-np.log(np.maximum(true_p, 1e-7))))


def test_metrics_of_no_examples_are_nan_and_bad_bins_are_named():
    """Accuracy, NLL and ECE of no examples were NaN through NumPy's "Mean of empty slice"
    and "invalid value" RuntimeWarnings (balanced accuracy returned NaN by itself); now all
    four say NaN without a warning. bins=0 failed in np.bincount ("'list' argument must have
    no negative elements"), bins=2.5 in linspace: a ValueError names the argument. Fails
    before: the warnings (errors here) and the messages."""
    import warnings

    from hubensemble import metrics

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = metrics.metrics(np.zeros((0, 3), np.float32), np.zeros(0, int), balanced=True)
    assert set(found) == {"accuracy", "nll", "ece", "balanced_accuracy"}
    assert all(np.isnan(v) for v in found.values()), found
    probs, y = np.array([[0.9, 0.1]]), np.array([0])
    for bins in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"bins must be an integer >= 1, got {bins!r}"):
            metrics.ece(probs, y, bins)
        with pytest.raises(ValueError, match="bins must be an integer >= 1"):
            report.reliability(probs, y, bins)


def test_the_knn_figure_of_forty_modules_names_them_without_overlap(monkeypatch):
    """A report of 40 modules with long names: the kNN scatter wrote every name beside its
    point, most over one another, unreadable. Each name shown now overlaps no other (checked
    on the drawn figure's text boxes, matplotlib's own extents), every member is named, and
    a note under the axes counts the names left out; a long name keeps its end, where a
    family's names differ (all read "imagenet21k_bit_m_r50x1…"). Fails before: overlapping
    names."""
    from hubensemble.report import figures

    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"")
    rng = np.random.default_rng(3)
    names = [f"imagenet21k_bit_m_r50x1_feature_vector_{i}" if i % 2 else f"m{i}"
             for i in range(40)]
    points = [(n, float(x), float(y)) for n, x, y in
              zip(names, rng.uniform(0.3, 0.9, 40), rng.uniform(0.5, 0.95, 40))]
    members = set(names[:6])
    figures.plot_knn(points, 0.2, "knn", members)
    fig = drawn[0]
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.xy in {(x, y) for _, x, y in points}]
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not [(a.get_text(), b.get_text()) for i, a in enumerate(labels)
                for b, box in zip(labels[i + 1:], boxes[i + 1:]) if boxes[i].overlaps(box)]
    named = {t.get_text() for t in labels}
    # Cut in the middle: names of one family stay apart by their ends.
    assert {n if len(n) <= 24 else f"{n[:11]}…{n[-12:]}" for n in members} <= named
    assert len(named) == len(labels)
    assert 10 < len(labels) < 40
    notes = [t.get_text() for t in ax.texts if t not in labels]
    assert notes == [f"{40 - len(labels)} of the 40 names left out where they would overlap "
                     "others (the Ranking table lists every module)"]
    # A few modules: every one named, no note.
    drawn.clear()
    figures.plot_knn(points[:3], 0.2, "knn", members)
    assert len(drawn[0].axes[0].texts) == 3


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_metrics_of_a_narrow_table_are_those_of_its_float64_copy(dtype):
    """The metrics reduce a float16 / float32 table before widening it (no float64 copy of
    every candidate's table): the numbers are those of the table widened first, to the bit,
    ties and exact 0 / 1 rows included. Tests only (no behaviour change)."""
    from hubensemble import metrics

    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.full(12, 0.2), 300).astype(dtype)
    probs[:4] = 0
    probs[:4, 0] = 1
    probs[4:8, :2] = 0.5
    probs[4:8, 2:] = 0
    y = rng.integers(0, 12, 300)
    wide = probs.astype(np.float64)
    assert metrics.metrics(probs, y, balanced=True) == metrics.metrics(wide, y, balanced=True)
    assert metrics.val_record(probs, y) == metrics.val_record(wide.astype(np.float32), y)
    lost = np.full((300, 12), 1 / 12, dtype)
    assert metrics.at_chance(lost, y, 12) == metrics.at_chance(lost.astype(np.float64), y, 12)


def test_reliability_titles_of_long_trial_names_stay_over_their_own_panel():
    """A best single member of a long module name ("best single (default-0041-imagenet21k_
    bit_m_r50x1_feature_vector…)") wrote its title over the next panel's. Titles are wrapped
    to their panel: no two overlap (matplotlib's text boxes of the drawn figure), each
    within its axes' width, and the name is whole across its lines. Fails before: the
    titles overlap."""
    from hubensemble.report.figures import reliability_figure

    rng = np.random.default_rng(0)
    probs, y = rng.dirichlet(np.ones(5), 100), rng.integers(0, 5, 100)
    trials = ["default-0041-imagenet21k_bit_m_r50x1_feature_vector.fine-tuned_on_a_long_20",
              "default-0044-efficientnet_v2_imagenet21k_ft1k_xl_feature_vector-22"]
    fig = reliability_figure([("ensemble", probs, y), (f"best single ({trials[0]})", probs, y),
                              (f"best in budget ({trials[1]})", probs, y)])
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    for ax, box in zip(fig.axes, boxes):
        axes = ax.get_window_extent(renderer)
        assert box.width <= axes.width * 1.1, ax.title.get_text()
    for ax, trial in zip(fig.axes[1:], trials):
        assert trial in ax.title.get_text().replace("\n", "")


def test_right_to_left_classes_of_duplicate_copies_are_isolated():
    """The data section's duplicates row names each copy's class in brackets ("(e.g.
    a/3.png (שלום) = b/0.png (cat))"): a right-to-left class there was plain text in
    report.html. It is a <bdi> now, as the notes' names; the row's text is unchanged.
    Fails before: no <bdi> in the row."""
    from hubensemble.report.datarows import accounting_rows
    from hubensemble.report.render import Inline, _inline_html

    record = {"class_names": ["cat", "שלום"], "duplicates": {
        "copies": 1, "groups": 1, "conflicting_labels": 1,
        "conflicting_examples": [[["/d/a/3.png", "שלום"], ["/d/b/0.png", "cat"]]]}}
    row = dict(accounting_rows(record))["exact duplicates"]
    assert str(row).endswith("different labels (e.g. /d/a/3.png (שלום) = /d/b/0.png (cat))")
    assert isinstance(row, Inline)
    assert _inline_html(row).endswith("(e.g. /d/a/3.png (<bdi>שלום</bdi>) = /d/b/0.png (cat))")
    record["duplicates"]["copies"] = 0  # --dedupe dropped every copy
    row = dict(accounting_rows(record))["exact duplicates"]
    assert "(<bdi>שלום</bdi>)" in _inline_html(row)


def _labelled_run(tmp_path):
    """A run whose ranking flags 3 training labels and whose tuned pool flags validation
    ones (test_labelcheck's tiny task): both label checks have something to say."""
    from test_labelcheck import ranked_run, tiny_task, tuned_pool

    _, y, given = tiny_task()
    run = tmp_path / "labelled"
    ranked_run(run, [0.9, 0.88, 0.85], given, [y] * 3)  # 3 training labels flipped
    cands, _, given_val = tuned_pool()
    atomic_save_npy(run / "labels" / "val.npy", given_val)
    for cand in cands:
        write_candidate(run / "candidates", {
            "trial": cand.trial, "module": cand.module, "status": "ok", "has_test": False,
            "val": split_record(cand.val_probs, given_val)}, val_probs=cand.val_probs)
    return run


def _count_label_checks(monkeypatch) -> dict:
    """{pure label check: calls}, counted from now on by wrappers of labelcheck's own
    check_ranking and check_validation (hubensemble's, no TensorFlow)."""
    from hubensemble import labelcheck

    calls = {"check_ranking": 0, "check_validation": 0}

    def counted(name):
        pure = getattr(labelcheck, name)

        def call(*args, **kwargs):
            calls[name] += 1
            return pure(*args, **kwargs)
        return call

    for name in calls:
        monkeypatch.setattr(labelcheck, name, counted(name))
    return calls


def test_a_report_runs_each_label_check_once_and_writes_what_it_wrote(
        tmp_path, monkeypatch, figures_not_drawn):
    """write_report built the Labels section (the training and validation label checks) and
    then `labels.write_list` ran both again for RUN/labels/to_check.csv (4.7 s of a 19 s
    report at 1,000 classes). Each runs once now (labels.checks_kept); the CSV and the
    report are the ones the checks computed apart give. Fails before: 2 calls each."""
    from hubensemble.report.labels import write_list
    from hubensemble.report.sections import build_sections
    from hubensemble.report.render import render_markdown

    run = _labelled_run(tmp_path)
    # Apart, as before: the list, then the sections, each computing its checks.
    csv_apart = write_list(run).read_text()
    md_apart = _timeless(render_markdown(*build_sections(run)[:2]))
    calls = _count_label_checks(monkeypatch)
    md, _ = report.write_report(run)
    assert calls == {"check_ranking": 1, "check_validation": 1}, calls
    csv = (run / "labels" / "to_check.csv").read_text()
    assert csv == csv_apart and csv.count("\ntrain,") == 3 and "\nval," in csv, csv
    assert _timeless(md.read_text()) == md_apart


@pytest.mark.parametrize("value, said", [(None, "null"), (True, "a JSON boolean true")])
def test_a_null_or_bool_figure_is_named_where_its_dash_is(full_run, tmp_path, value, said,
                                                          figures_not_drawn):
    """A new user's check: ensemble.json's test.best_single.accuracy hand-set to null read
    "Test accuracy 0.0979 (ensemble) vs – (best single)" with no note in the Overview or the
    test section (a string "x" got both); null or a bool, in ensemble.json, robustness.json
    or a retrained export's metadata ("metrics" "test"), now gets the same note.
    Fails before: no "see the note" in the Overview, no field named in either section."""
    import json

    run, _ = _copy_of(full_run, tmp_path)
    doc = read_json(run / "ensemble.json")
    doc["test"]["best_single"]["accuracy"] = value
    atomic_write_json(run / "ensemble.json", doc)
    rob = read_json(run / "robustness.json")
    rob["clean"]["ensemble"]["nll"] = value
    atomic_write_json(run / "robustness.json", rob)
    text, _ = _report_of(run)
    overview = " ".join(text.split("\n## ")[1].split())
    assert ("vs – (best single); NLL" in overview and "(\"–\": ensemble.json's "
            "\"test.best_single.accuracy\" is not a finite number; see the note in \"Best "
            "single member vs ensemble on test\")" in overview), overview
    test = " ".join(text.split("\n## Best single member vs ensemble on test")[1]
                    .split("\n## ")[0].split())
    assert f"\"test.best_single.accuracy\" is {said}: not a finite number" in test, test
    assert f"\"clean.ensemble.nll\" is {said}: not a finite number" in " ".join(text.split())
    # A retrained export's own test figures (its metadata's "metrics" "test").
    members = [{"trial": m["trial"], "weight": m["weight"]} for m in doc["members"]]
    after = json.loads(json.dumps(doc["test"]))
    after["best_single"]["accuracy"] = 0.5
    after["ensemble"]["nll"] = value
    (run / "export" / "assets").mkdir(parents=True, exist_ok=True)
    (run / "export" / "saved_model.pb").write_bytes(b"")
    atomic_write_json(run / "export" / "assets" / "hubensemble.json", {
        "members": members, "skipped": [], "retrain_full": True,
        "metrics": {"test": after, "test_before_retraining": doc["test"]}})
    text, _ = _report_of(run)
    overview = " ".join(text.split("\n## ")[1].split())
    assert "retrained on train + val" in overview and "vs 0.5000 (best single)" in overview
    assert ("(\"–\": the export's hubensemble.json's \"metrics.test.ensemble.nll\" is not a "
            "finite number; see the note") in overview, overview
    test = " ".join(text.split("\n## Best single member vs ensemble on test")[1]
                    .split("\n## ")[0].split())
    assert f"\"metrics.test.ensemble.nll\" is {said}: not a finite number" in test, test
    assert "hubensemble.json" in test


def test_fits_closing_table_shares_its_reports_label_checks(tmp_path, monkeypatch,
                                                            figures_not_drawn):
    """fit's closing table (`FitResult.summary`: `labels.summary_line`) ran the training and
    validation label checks a third time, after fit's report had run them. fit's report
    and the line now come from one run of each (`report.write.fit_report`), and the table
    says that line, as the checks run apart give it. Fails before: no fit_report; the
    table's own call ran each check again (2 calls each)."""
    from hubensemble.pipeline import FitResult
    from hubensemble.report.labels import summary_line
    from hubensemble.report.write import fit_report

    run = _labelled_run(tmp_path)
    calls = _count_label_checks(monkeypatch)
    paths, line = fit_report(run)
    result = FitResult(run_dir=run, ranking=None, ensemble={}, metrics=None,
                       export_path=run / "export", report_paths=paths, robustness=None,
                       stage_seconds={}, labels_line=(line,))
    shown = result.summary().splitlines()
    assert calls == {"check_ranking": 1, "check_validation": 1}, calls
    monkeypatch.undo()
    apart = summary_line(run)  # the checks run again, apart: the same line
    assert apart.startswith("note: 3 training images' labels look wrong") and apart in shown


def test_right_to_left_paths_in_the_data_rows_are_isolated():
    """A new user's check: the duplicates row ("1 copy in 1 group of equal pixels (e.g.
    cat/0.png = שלום/dup.png)") and the "files read" row ("e.g. שלום/big.gif: …") held a
    right-to-left path as plain text in report.html, where only class names were <bdi>.
    Every example path holding right-to-left text is a <bdi> now, in every data row (the
    evaluation's decoding rows too); the rows' text is unchanged.
    Fails before: no <bdi> around either path."""
    import unicodedata

    from hubensemble.report.datarows import accounting_rows, decoding_rows
    from hubensemble.report.render import _inline_html

    record = {"source": "folder:/d (split 80/10/10)", "files": 4,
              "sizes": {"train": 2, "val": 1, "test": 1}, "class_names": ["cat", "שלום"],
              "skipped": [["/d/שלום/big.gif", "too large"]],
              "duplicates": {"copies": 1, "groups": 1,
                             "examples": [["/d/cat/0.png", "/d/שלום/dup.png"]]},
              "shrunk": {"count": 1, "examples": [["/d/ערב טוב/x.png", [4000, 3000]]]}}
    rows = dict(accounting_rows(record))
    html = {label: _inline_html(cell) for label, cell in rows.items()}
    assert str(rows["exact duplicates"]).startswith(
        "1 copy in 1 group of equal pixels (e.g. cat/0.png = שלום/dup.png)")
    assert "(e.g. cat/0.png = <bdi>שלום/dup.png</bdi>)" in html["exact duplicates"]
    assert "; <bdi>שלום/big.gif</bdi>: too large)" in html["files read"]
    assert "e.g. <bdi>ערב טוב/x.png</bdi>: 4000x3000" in html["shrunk images"]
    for label, text in html.items():  # no right-to-left letter outside a <bdi>
        outside = re.sub(r"<bdi>.*?</bdi>", "", text)
        assert not any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in outside), text
    evaluated = dict(decoding_rows({**record, "files": None}))
    assert "<bdi>שלום/big.gif</bdi>" in _inline_html(evaluated["skipped files"])


@pytest.mark.parametrize("value, said", [(None, "null"), ("x", "a JSON string \"x\""),
                                         (True, "a JSON boolean true")])
def test_the_closing_table_shows_a_dash_and_says_why_for_a_hand_edited_figure(
        full_run, tmp_path, value, said):
    """fit's closing table (`summary_table`) with ensemble.json's test.best_single.accuracy
    hand-set: null raised TypeError and "x" ValueError (format code 'f'), so fit ended with
    a traceback after its work was done; true showed 1.0000. It shows "–" and a note that
    names the field and the command that writes the file again, as the report does.
    Fails before: TypeError / ValueError / "1.0000" in the table."""
    run, _ = _copy_of(full_run, tmp_path)
    doc = read_json(run / "ensemble.json")
    doc["test"]["best_single"]["accuracy"] = value
    atomic_write_json(run / "ensemble.json", doc)
    lines = report.summary_table(run).splitlines()
    row = next(line for line in lines if line.startswith("best single ("))
    assert row.split()[-3:] == ["–", f"{doc['test']['best_single']['nll']:.4f}",
                                f"{doc['test']['best_single']['ece']:.4f}"], row
    from hubensemble.lockwords import command_words

    assert (f"note: ensemble.json's \"test.best_single.accuracy\" is {said}, not a finite "
            "number (shown as \"–\"): edited by hand, or written by another version; "
            f"{command_words('ensemble', run)} writes it again") in lines, lines


def test_the_closing_tables_balanced_line_never_says_nan(full_run, tmp_path):
    """ensemble.json's test.ensemble.balanced_accuracy hand-set to "x" (or null, or a NaN)
    read "balanced accuracy (…): ensemble nan, …" in the closing table once the figure was
    checked; it is computed from the members' test probabilities, as for an ensemble.json
    written before it was recorded (the line of that file, absent the field).
    Fails before: "x" raised ValueError (format code 'f')."""
    run, _ = _copy_of(full_run, tmp_path)
    y = np.array([1] * 3 + [0] * (N_TEST - 3))  # unbalanced test classes
    atomic_save_npy(run / "labels" / "test.npy", y)
    doc = read_json(run / "ensemble.json")
    for model in ("ensemble", "best_single"):
        doc["test"][model].pop("balanced_accuracy", None)
    atomic_write_json(run / "ensemble.json", doc)

    def balanced():
        return [line for line in report.summary_table(run).splitlines()
                if line.startswith("balanced accuracy")]

    absent = balanced()
    assert len(absent) == 1 and re.search(r"ensemble \d\.\d{4}", absent[0]), absent
    doc["test"]["ensemble"]["balanced_accuracy"] = "x"
    doc["test"]["best_single"]["balanced_accuracy"] = 0.5
    atomic_write_json(run / "ensemble.json", doc)
    assert balanced() == absent and "nan" not in absent[0]


def test_distill_jsons_hand_edited_figures_are_named_as_ensemble_jsons_are(
        full_run, tmp_path, figures_not_drawn):
    """distill.json's figures were not checked as ensemble.json's are: a hand-edited
    student.test.accuracy "x" was shown with no note. The cost section names the file, the
    field and the command that writes it again (`checks.number_problems`, the ensemble
    figures' checker), shows "–"; a damaged share of the gain is not said from it."""
    run, _ = _copy_of(full_run, tmp_path)
    members = [m["trial"] for m in read_json(run / "ensemble.json")["members"]]
    test = {"accuracy": "x", "nll": 0.5, "ece": 0.05}
    atomic_write_json(run / "distill.json", {
        "student": {"module": "small", "test": test, "val": {**test, "accuracy": 0.75},
                    "cost": {"gflops": 0.02, "params": 1234}, "path": "distill/s"},
        "teacher": {"members": members}, "gap_closed": 0.5, "cost_ratio": 2.0,
        "gap": {"n": 50, "images": 9, "z": 2.7, "significant": True, "student_images": 4}})
    text, _ = _report_of(run)
    joined = " ".join(text.split())
    tail = ": not a finite number as its writer writes (shown as \"–\", left out of the plots)"
    assert (f"Note: in {run}/distill.json, \"student.test.accuracy\" is a JSON string \"x\""
            f"{tail}: edited by hand, or written by another version; `hubensemble distill "
            f"--run {run} --student small` writes it again.") in joined, joined
    # Its row in the cost table (a run with cost.json): "–" for it, the others as recorded.
    from hubensemble.report.checks import DISTILL_NUMBERS, number_problems
    from hubensemble.report.costs import cost_row

    student = read_json(run / "distill.json")["student"]
    assert number_problems({"student": student}, DISTILL_NUMBERS) == [
        ("student.test.accuracy", 'a JSON string "x"')]
    assert cost_row("distilled student", 1, student["cost"], student["test"]["accuracy"],
                    student["val"]["accuracy"])[-4:] == ["–", "–", "–", "0.7500"]
    assert cost_row("s", 1, {"params": float("nan")}, None, None)[3] == "–"
    assert "keeps 50% of the ensemble's" in joined  # the share's own figures are numbers
    # A share of the gain that is no number: named, and no sentence is made of it.
    doc = read_json(run / "distill.json")
    doc["student"]["test"]["accuracy"] = 0.7
    doc["gap_closed"] = "half"
    atomic_write_json(run / "distill.json", doc)
    joined = " ".join(_report_of(run)[0].split())
    assert f"Note: in {run}/distill.json, \"gap_closed\" is a JSON string \"half\"" in joined
    assert "keeps" not in joined and "half" not in joined.replace('"half"', "")


def test_right_to_left_paths_in_the_labels_and_failures_sections_are_isolated(
        full_run, tmp_path, figures_not_drawn):
    """3a5ec54 isolated right-to-left paths in the data rows only: the Labels section's
    examples (a training image's file "שלום/3.png") and the failures section's reasons and
    modules ("cannot read /d/ערב טוב/x.png: …", a module named in Hebrew) were plain text in
    report.html, their parts read out of order beside the words around them. Each
    right-to-left run of words is a <bdi> now; the text is unchanged."""
    import json
    import unicodedata

    def rtl_outside_bdi(html):  # right-to-left letters in report.html's text, not isolated
        body = re.sub(r"<bdi>.*?</bdi>", "", html, flags=re.S)
        return sorted({ch for ch in body if unicodedata.bidirectional(ch) in ("R", "AL")})

    labelled = _labelled_run(tmp_path)
    n = len(np.load(labelled / "labels" / "train.npy"))
    paths = [f"/d/{'שלום' if i % 2 else 'cat'}/{i}.png" for i in range(n)]
    (labelled / "labels" / "train_paths.json").write_text(json.dumps(paths))
    md, html = report.write_report(labelled)
    labels = html.read_text().split("Labels to check</h2>", 1)[1].split("<h2", 1)[0]
    assert "<bdi>/d/שלום/" in labels, labels
    assert rtl_outside_bdi(labels) == []
    assert "<bdi>" not in md.read_text()  # report.md: the text as it was
    run, _ = _copy_of(full_run, tmp_path)
    failed = read_json(run / "candidates" / "default-0008-alpha" / "trial.json")
    reason = "cannot read /d/ערב טוב/x.png: no such file"
    atomic_write_json(run / "candidates" / "default-0008-alpha" / "trial.json",
                      {**failed, "module": "מודול", "reason": reason})
    md, html = report.write_report(run)
    failures = html.read_text().split("What failed and why</h2>", 1)[1].split("<h2", 1)[0]
    assert "cannot read <bdi>/d/ערב טוב/x.png</bdi>: no such file" in failures, failures
    assert "<bdi>מודול</bdi>" in failures
    assert rtl_outside_bdi(failures) == []
    assert reason in md.read_text()


def test_a_distill_json_whose_ensemble_has_no_gain_is_shown_as_distill_means_it(
        full_run, tmp_path, figures_not_drawn):
    """distill writes gap_closed (and cost_ratio) null by design when the ensemble is not more
    accurate than its best single member (and when it has no recorded cost): the report named
    that null as damage, "not a finite number as its writer writes … `hubensemble distill`
    writes it again", a distill that writes null again. Built here by distill's own
    comparison (`distillcompare._compare`) of an ensemble of one member, its best single;
    the report now says there is no gain to keep, and names only a wrong kind or a NaN.
    Fails before: the note named "gap_closed" and "cost_ratio" as null."""
    import types

    from hubensemble.cost.records import Cost
    from hubensemble.distillcompare import _compare

    run, _ = _copy_of(full_run, tmp_path)
    ensemble.run_ensemble(run, budget=1)  # one pick: the best single member alone
    ens = read_json(run / "ensemble.json")
    y_val, y_test = (np.load(run / "labels" / f"{s}.npy") for s in ("val", "test"))
    single = candidate.read_candidate(run / "candidates", ens["members"][0]["trial"])
    single.load_probs()
    rng = np.random.default_rng(7)
    probs = {"val": probs_for(y_val, 1.0, rng), "test": probs_for(y_test, 1.0, rng)}
    task = types.SimpleNamespace(val=types.SimpleNamespace(labels=y_val),
                                 test=types.SimpleNamespace(labels=y_test))
    record = {"trial": "distilled-small", "module": "small", "hparams": {}, "steps": 40,
              "init": "module", "init_from": None, "seconds": 1.0,
              "teacher": {"members": [single.trial], "export": None, "retrain_full": False}}
    student_cost = Cost(module="small", fingerprint=None, size=8, num_classes=C, macs=1000,
                        params=1234)
    result = _compare(Run(run), ens, record, types.SimpleNamespace(folder=run / "distill" / "s"),
                      probs, task, student_cost, {}, [single])
    doc = result.to_json()
    assert doc["gap_closed"] is None and doc["cost_ratio"] is None  # as distill writes them
    atomic_write_json(run / "distill.json", doc)
    joined = " ".join(_report_of(run)[0].split())
    assert "not a finite number" not in joined and "gap_closed" not in joined, joined
    right = np.argmax(probs["test"], 1) == y_test
    gained = int(right.sum()) - int((np.argmax(single.test_probs, 1) == y_test).sum())
    accuracy = float(np.mean(np.argmax(single.test_probs, 1) == y_test))
    assert (f"the ensemble is not more accurate than the best single member on the test "
            f"split (test accuracy {accuracy:.4f} against {accuracy:.4f}), so there is no "
            f"gain for the student to keep and no share of it is given; the student gets "
            f"{gained:+d} images against the best single member.") in joined, joined
    # A wrong kind or a NaN there is still damage, named as before.
    for bad, said in (("half", 'a JSON string "half"'), (float("nan"), "NaN")):
        atomic_write_json(run / "distill.json", {**doc, "gap_closed": bad})
        joined = " ".join(_report_of(run)[0].split())
        assert f"Note: in {run}/distill.json, \"gap_closed\" is {said}" in joined, joined


def test_right_to_left_paths_and_names_are_isolated_in_every_section(
        full_run, tmp_path, figures_not_drawn):
    """A fit on `folder:/tmp/ערב טוב` showed its Data table's name, source and data spec with
    no <bdi> in report.html (the Labels and failures sections' were isolated, the others not):
    their parts read out of order beside the words around them. Every section's text and
    table cells are isolated now, the title, a code span holding right-to-left text (the data
    spec, a command with the run's path) and a module named in Hebrew in the ranking and
    members tables too. report.md is unchanged. Fails before: the Data table held "ערב" out of
    any <bdi>."""
    import unicodedata

    def rtl_outside_bdi(html):
        body = re.sub(r"<bdi>.*?</bdi>", "", html, flags=re.S)
        return sorted({ch for ch in body if unicodedata.bidirectional(ch) in ("R", "AL")})

    run, _ = _copy_of(full_run, tmp_path)
    meta = read_json(run / "run.json")
    meta["data"]["task"].update(name="ערב טוב", source="folder /tmp/ערב טוב (3 classes)")
    meta["data"]["args"] = {**(meta["data"].get("args") or {}), "spec": "folder:/tmp/ערב טוב"}
    atomic_write_json(run / "run.json", meta)
    ranking = read_json(run / "ranking.json")
    ranking["modules"][0]["name"] = "מודול"
    atomic_write_json(run / "ranking.json", ranking)
    md_before = report.write_report(run)[0].read_text()
    md, html = report.write_report(run)
    page = html.read_text()
    data = page.split("Data</h2>", 1)[1].split("<h2", 1)[0]
    assert "<bdi>ערב טוב</bdi>" in data and "<bdi>/tmp/ערב טוב</bdi>" in data, data
    assert "<bdi><code>--data 'folder:/tmp/ערב טוב'</code></bdi>" in data, data
    body = page.split("<body>", 1)[1]  # (the <title> is the browser's: no markup there)
    assert rtl_outside_bdi(body) == [], rtl_outside_bdi(body)
    assert "<h1>hubensemble report: <bdi>ערב טוב</bdi></h1>" in body
    ranked = body.split("Ranking</h2>", 1)[1].split("<h2", 1)[0]
    assert "<bdi>מודול</bdi>" in ranked, ranked
    text = md.read_text()
    assert "<bdi>" not in text and "folder /tmp/ערב טוב (3 classes)" in text
    assert _timeless(text) == _timeless(md_before)


def test_the_reports_ensemble_probabilities_are_summed_member_by_member():
    """The report's cost table and test panels stacked the members' tables and converted the
    stack to float64 (`ensemble_probs`): 804 MB traced on a 611 MB pool. They sum member by
    member now (`ensemble_probs` of the tables, one at a time), to the bit. Fails before: the
    traced peak was three times the members' tables."""
    import tracemalloc
    from types import SimpleNamespace

    from hubensemble import ensemble as ens
    from hubensemble.report.costs import _members_probs

    rng = np.random.default_rng(4)
    tables = rng.dirichlet(np.ones(50), size=(20, 500)).astype(np.float32)
    files = SimpleNamespace(candidates=[SimpleNamespace(trial=f"t{i}", test_probs=t)
                                        for i, t in enumerate(tables)])
    members = [{"trial": f"t{i}", "weight": 1.0 + i % 3} for i in range(20)]
    want = ens.ensemble_probs(tables, {i: 1.0 + i % 3 for i in range(20)})
    tracemalloc.start()
    try:
        got = _members_probs(files, members, "test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, want)
    assert peak < tables.nbytes, (peak, tables.nbytes)


def test_a_right_to_left_task_name_is_isolated_in_the_title_where_markup_cannot_go(tmp_path):
    """report.html's <title> held the task's name as plain text: a right-to-left name
    carried ": hubensemble report" into its direction in the tab, and <bdi> cannot go there.
    The name is between FSI and PDI (U+2068, U+2069) in <title>, and whole in one <bdi> in
    <h1> ("(2)" of "שלום (2)" was left outside it); escaped in both. Fails before: no FSI."""
    from html.parser import HTMLParser

    name = "שלום (2) <b>&amp;"
    make_ranked_run(tmp_path, MODULES)
    section = data_section()
    section["task"]["name"] = name
    Run(tmp_path).update(data=section)
    _, html_path = report.write_report(tmp_path)
    page = html_path.read_text()

    class Heads(HTMLParser):
        def __init__(self):
            super().__init__()
            self.open, self.text = [], {"title": "", "h1": "", "bdi": ""}

        def handle_starttag(self, tag, attrs):
            self.open.append(tag)

        def handle_endtag(self, tag):
            self.open.pop()

        def handle_data(self, data):
            for tag in set(self.open) & {"title", "h1", "bdi"}:
                if tag != "bdi" or "h1" in self.open:
                    self.text[tag] += data

    heads = Heads()
    heads.feed(page)
    assert heads.text["title"] == f"hubensemble report: \u2068{name}\u2069", heads.text
    assert heads.text["h1"] == f"hubensemble report: {name}" and heads.text["bdi"] == name
    assert "<b>" not in page.split("</h1>")[0]


def test_each_candidate_left_out_and_each_failed_trial_has_its_way_on(full_run, tmp_path,
                                                                      figures_not_drawn):
    """The "What failed and why" tables gave no way on for a finished candidate whose
    table has another row or class count (tune reuses its folder: a plain tune did nothing)
    nor for a failed trial ("run the same command again" names no command in a report):
    each such row says to delete its folder, then its sweep's tune, by the ensemble's rule
    (`ensemble.redo_kind`) in the members' rows' words (`redo_step`). Fails before: no
    "to redo it" column in either table."""
    run, _ = _copy_of(full_run, tmp_path)
    index = 2 * len(MODULES)
    first = next(iter(MODULES))
    failed, broken = (f"default-{index:04d}-{first}", f"default-{index + 1:04d}-{first}")
    md = " ".join(report.write_report(run)[0].read_text().split())

    def way(trial):
        return (f"delete `{run / 'candidates' / trial}`, then run `hubensemble tune --run "
                f"{run} --sweep default")

    assert "| trial | reason | to redo it |" in md, md
    row = md[md.index(f"| {broken} | val_probs.npy has shape"):]
    assert row.split(" | ")[2].startswith(way(broken)), row
    assert "| reason | to redo it, once its cause is fixed |" in md
    row = md[md.index(f"| {failed} | {first} |"):]
    assert row.split(" | ")[3].startswith(way(failed)), row


def test_a_fit_without_corruptions_is_said_why_it_has_no_robustness_evaluation(
        full_run, tmp_path, figures_not_drawn):
    """A fit run with --no-corruptions: the robustness section said only "robustness.json is
    missing: run `hubensemble evaluate …`", as if a stage had been lost; it says the fit's
    choice, then how to measure them. Fails before: no "--no-corruptions"."""
    run, _ = _copy_of(full_run, tmp_path)
    (run / "robustness.json").unlink()
    text, _ = _report_of(run)
    plain = text[text.index("## Robustness"):text.index("## What failed")]
    assert "--no-corruptions" not in plain  # no fit recorded: the command alone
    Run(run).update(fit={"options": {"profile": "quick", "corruptions": False}})
    text, _ = _report_of(run)
    said = " ".join(text[text.index("## Robustness"):text.index("## What failed")].split())
    assert ("No robustness evaluation (robustness.json is missing): fit ran with "
            "`--no-corruptions`, which evaluates none; to measure them, run `hubensemble "
            f"export --run {run}` (then evaluate).") in said, said  # no export in full_run


def test_the_cost_tables_test_column_without_a_test_split_says_why(tmp_path, figures_not_drawn):
    """A run without a test split: the cost table's "test acc" column was all "–" with no
    word why (the student's row too, after distill); it says the ensemble's reason, in the
    command line's words. Fails before: no "No test accuracy"."""
    from hubensemble.cost import Cost, machine_info
    from hubensemble.cost.records import write_run_costs

    make_full_run(tmp_path, robustness=False, seed=2)
    (tmp_path / "labels" / "test.npy").unlink()
    data = data_section()
    data["task"]["sizes"]["test"] = None
    Run(tmp_path).update(data=data)
    trials = [c.trial for c in candidate.scan(tmp_path / "candidates")[0] if c.ok]
    write_run_costs(tmp_path, {t: Cost(module=t.split("-", 2)[2], fingerprint=None, size=8,
                                       num_classes=C, macs=1000, params=10)
                               for t in trials}, machine_info())
    ensemble.run_ensemble(tmp_path, budget=6)
    md = " ".join(report.write_report(tmp_path)[0].read_text().split())
    cost = md[md.index("## Inference cost"):md.index("## Ensemble members")]
    assert ("No test accuracy (\"–\"): the run's data has no test split (give it one: x_test "
            "and y_test in an npz, a test/ folder or --test-fraction for folder: data") in cost, \
        cost


def test_a_student_whose_ensemble_is_gone_is_still_in_the_cost_section(
        full_run, tmp_path, figures_not_drawn):
    """A run with a distilled student and no ensemble.json (deleted since distill ran): the
    cost section said only "There is no ensemble yet", and no section named the student,
    whose files and figures still hold. It shows the student's row, says why no comparison
    is given (the note before it names what selects an ensemble again). Fails before: no
    "distilled student"."""
    run, _ = _copy_of(full_run, tmp_path)
    test = {"accuracy": 0.625, "nll": 0.5, "ece": 0.05}
    atomic_write_json(run / "distill.json", {
        "student": {"module": "small", "test": test, "val": {**test, "accuracy": 0.75},
                    "cost": {"gflops": 0.02, "params": 1234}, "path": "distill/s"},
        "teacher": {"members": []}, "gap_closed": None, "cost_ratio": 2.0})
    (run / "ensemble.json").unlink()
    text, _ = _report_of(run)
    cost = " ".join(text[text.index("## Inference cost"):text.index("## Ensemble members")]
                    .split())
    # Said once, not "yet" (a student was distilled from it); the later sections point to it
    # (a new-user check: the sentence five times).
    assert 'Not shown: there is no ensemble.json (see "Ensemble size").' in cost, cost
    assert " ".join(text.split()).count(
        "There is no ensemble (ensemble.json is missing, though a student was distilled from "
        "it: distill.json): ") == 1 and "no ensemble yet" not in text, text
    assert ("The distilled student (distill.json) remains, but not the ensemble it was "
            "distilled from, so no comparison with it is given: | model |") in cost, cost
    assert "| distilled student (small) | 1 | 0.0200 | 1,234 | – | – | 0.6250 | 0.7500 |" in cost


def test_every_legend_has_a_place_of_its_own_outside_the_data():
    """matplotlib's loc="best" (the kNN figure's, and the default of the ensemble curve's and
    the robustness figure's legends) searched the data for a place and, when that took over
    a second, warned that it "can be slow": a CI run's warnings varied by timing. Each legend
    has a fixed place outside its axes. Fails before: the kNN legend's loc is "best" (0)."""
    from hubensemble.report import figures

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(C), 40)
    rob = {"split": "test", "clean": {"ensemble": {"accuracy": 0.9},
                                      "best_single": {"accuracy": 0.8}},
           "corruptions": {"gaussian_noise": {"1": {"ensemble": {"accuracy": 0.7},
                                                    "best_single": {"accuracy": 0.6}}}}}
    curve = [{"size": s, "ce": 1.0 / s, "accuracy": 0.5 + s / 10} for s in (1, 2, 3)]
    made = (lambda: figures.knn_figure([("a", 0.1, 0.5), ("b", 0.4, 0.9)], 1.0, "cosine",
                                       {"b"}),
            lambda: figures.curve_figure(curve, 2, {"nll": 0.6, "accuracy": 0.6}, curve),
            lambda: figures.robustness_figure(rob),
            lambda: figures.reliability_figure([("ensemble", probs, rng.integers(0, C, 40))]))
    for make in made:
        fig = make()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            assert legend._loc != 0, fig  # 0: "best"
            box = legend.get_window_extent(renderer)
            assert not box.overlaps(ax.get_window_extent(renderer)), (fig, box)


def test_a_budget_far_past_every_cost_is_not_drawn_and_the_caption_says_so(tmp_path):
    """`ensemble --max-gflops 1e308` was accepted, then every report's cost figure drew the
    budget on its log axis and matplotlib warned "overflow encountered in exp". A budget over
    figures.BUDGET_SPAN (100) times the largest cost plotted is left out, and the caption says
    so; one within it is drawn. Fails before: the RuntimeWarning (an error here)."""
    import warnings

    from hubensemble.cost import Cost, machine_info
    from hubensemble.cost.records import write_run_costs
    from hubensemble.report import figures

    make_full_run(tmp_path, robustness=False, seed=2)
    trials = [c.trial for c in candidate.scan(tmp_path / "candidates")[0] if c.ok]
    write_run_costs(tmp_path, {t: Cost(module=t.split("-", 2)[2], fingerprint=None, size=8,
                                       num_classes=C, macs=1000, params=10)
                               for t in trials}, machine_info())
    ensemble.run_ensemble(tmp_path, budget=6, max_gflops=1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        md = " ".join(report.write_report(tmp_path)[0].read_text().split())
    assert ("The budget --max-gflops 1e+308 is not drawn: it is over 100 times the largest "
            "cost shown.") in md, md[md.index("## Inference cost"):]
    assert (tmp_path / "report_files" / "accuracy_vs_gflops.png").stat().st_size > 1000
    panel = {"title": "val", "candidates": [(0.01, 0.5, True), (0.02, 0.6, False)],
             "path": [(0.01, 0.5)], "chosen": 0}
    assert figures.budget_drawn([panel], 2.0) and not figures.budget_drawn([panel], 2.01)
    assert not figures.budget_drawn([panel], float("inf"))


def test_inside_a_fit_folder_the_members_ways_on_stop_at_the_fit_command(full_run, tmp_path,
                                                                         figures_not_drawn):
    """In a fit's folder (run.json's fit plans the sweep) a member's row names the fit's
    command, which runs the ensemble after the trial, yet "What failed and why" went on "then
    `hubensemble ensemble` selects again" and an edited member's warning "then `hubensemble
    ensemble …`". Both stop at the fit command there (sweepwords.redone_by_fit). Fails
    before: "selects again" in the members' block."""
    run, ens_record = _copy_of(full_run, tmp_path)
    meta = read_json(run / "run.json")
    meta["tune"] = {"sweep": "default", "sweeps": {"default": {"budget": 8, "seed": 0}}}
    meta["fit"] = {"options": {"sweep": "default", "budget": 8, "seed": 0, "profile": "quick",
                               "top_k": 2}}
    atomic_write_json(run / "run.json", meta)
    broken, edited = _member(ens_record, best=True), _member(ens_record, best=False)
    (run / "candidates" / broken / "val_probs.npy").unlink()
    cand = candidate.read_candidate(run / "candidates", edited)
    cand.load_probs()
    candidate.write_candidate(run / "candidates", cand.record, val_probs=cand.val_probs,
                              test_probs=cand.test_probs,
                              save_weights=lambda p: open(p, "wb").write(b"weights"))
    (run / "candidates" / edited / candidate.WEIGHTS_FILE).write_bytes(b"edited")
    text, _ = _report_of(run)
    text = " ".join(text.split())
    failures = text[text.index("## What failed and why"):text.index("## Time per stage")]
    assert ("): each is redone as its row says (tune redoes a trial whose file is missing or "
            "changed since it wrote it; one of a hubensemble before trial.json recorded its "
            "files, its files all there, needs its folder deleted first). | trial |"
            in failures), failures
    row = failures[failures.index(f"| {broken} |"):].split(" | ")[2]
    assert row.startswith("run `hubensemble fit "), row  # it redoes the trial as it is
    warning = text[text.index(f"Warning:** {edited}: its weights file"):]
    warning = warning[:warning.index("(it redoes the trial)") + 40]
    assert "(it redoes the trial). " in warning and "`hubensemble fit " in warning, warning


def test_the_failed_trials_way_on_is_said_once_under_their_table(full_run):
    """"What failed and why" gives each failed trial its way on in its row (delete the folder,
    then its sweep's command), yet still printed under the table tune's old closing words
    "…, then run the same command again (a chief/worker sweep: its chief's and each
    worker's)", a second way on naming no command. The line under the table says only why
    the rows delete the folder first, with the command that removes them. Fails before: "then
    run the same command again" under the table."""
    from hubensemble.text import shell

    path, md = full_run[0], " ".join(full_run[2].split())
    failures = md[md.index("## What failed and why"):md.index("## Time per stage")]
    failed = sorted(p.name for p in (path / "candidates").iterdir()
                    if read_json(p / "trial.json")["status"] == "failed")
    assert "then run the same command again" not in failures, failures
    assert failures.count("Running the same command again does not retry") == 1
    assert ("Running the same command again does not retry the 1 failed trial (a failed "
            "trial counts as finished), so its row deletes its folder first (`(cd "
            f"{shell(path / 'candidates')} && rm -r {failed[0]})`).") in failures, failures


@pytest.mark.parametrize("name, heading", [
    ("שלום (2)", "# hubensemble report: \u2068שלום (2)\u2069"),
    ("toy (2)", "# hubensemble report: toy (2)"),  # no right-to-left text: as it is
])
def test_a_right_to_left_task_name_is_isolated_in_report_mds_heading(
        tmp_path, name, heading, figures_not_drawn):
    """report.md's heading "# hubensemble report: שלום (2)" had no isolation, where
    report.html's <title> puts the name between FSI and PDI (render.plain_isolated): a
    right-to-left name carried the text after it into its direction. It stands between FSI
    and PDI there too; a left-to-right name is shown as it is. Fails before: no FSI."""
    make_ranked_run(tmp_path, MODULES)
    section = data_section()
    section["task"]["name"] = name
    Run(tmp_path).update(data=section)
    md = report.write_report(tmp_path)[0].read_text()
    assert md.splitlines()[0] == heading, md.splitlines()[0]


def test_fits_closing_table_says_fits_command_for_a_failed_trial_not_tunes_words(
        tmp_path, figures_not_drawn):
    """fit's closing table ended the way on of a failed trial "then run the same command
    again (a chief/worker sweep: its chief's and each worker's)", tune's summary's words,
    which fit never runs. In a fit's folder whose fit plans the trial, it names the fit's
    own command (`sweepwords.redo_words`, what the ensemble's line names); for a trial a
    later tune added, that tune. Fails before: the chief/worker words, no fit command."""
    from hubensemble.lockwords import command_line
    from hubensemble.rerun import fit_command

    make_full_run(tmp_path, robustness=False)
    failed = next(c.trial for c in candidate.scan(tmp_path / "candidates")[0]
                  if c.status == "failed")
    with command_line():  # a run of stage commands: the sweep's own tune
        line = next(t for t in report.summary_table(tmp_path).splitlines()
                    if "does not retry the 1 failed" in t)
    assert line.endswith(f"then run `hubensemble tune --run {tmp_path} --sweep default`"), line
    Run(tmp_path).update(fit={"catalogue": [str(tmp_path / "c.yaml:2")],
                              "data": "sklearn:digits",
                              "options": {"sweep": "default", "profile": "quick", "top_k": 3}},
                         data={**data_section(), "args": {"spec": "sklearn:digits"}},
                         tune={"sweeps": {"default": {"profile": {"name": "quick"}}}})
    with command_line():
        table = report.summary_table(tmp_path)
        fit = fit_command(tmp_path, read_json(tmp_path / "run.json"), restart=False)
    line = next(t for t in table.splitlines() if "does not retry the 1 failed" in t)
    assert "chief/worker" not in line, line
    assert line.endswith(f"rm -r {failed})`), then run `{fit}`"), line
    assert fit.startswith("hubensemble fit --catalogue ") and "--profile quick" in fit, fit


def test_the_report_says_the_pool_grew_since_the_ensemble_was_selected(tmp_path,
                                                                       figures_not_drawn):
    """A tune after the ensemble (another sweep, a larger --budget) left a report that said
    "Candidates: N+1 usable" and "greedy selection over N candidates" with no word of the
    difference. It warns, with the ensemble command that selects from them all; the
    candidate it left out (make_full_run's broken one) is not counted as new, and after that
    ensemble the warning is gone. Fails before: no warning."""
    from hubensemble.lockwords import command_line
    from hubensemble.sweepwords import ensemble_words

    make_full_run(tmp_path, robustness=False)
    md = report.write_report(tmp_path)[0].read_text()
    assert "added since" not in md
    known = read_json(tmp_path / "ensemble.json")["n_candidates"]
    rng = np.random.default_rng(5)
    y_val = np.load(tmp_path / "labels" / "val.npy")
    y_test = np.load(tmp_path / "labels" / "test.npy")
    vp, tp = probs_for(y_val, 1.0, rng), probs_for(y_test, 1.0, rng)
    write_candidate(tmp_path / "candidates", {
        "trial": "seeds-0000-alpha", "module": "alpha", "handle": "/zoo/alpha",
        "hparams": {"lr": 0.1, "steps": 40}, "seed": 7, "status": "ok", "reason": None,
        "val": split_record(vp, y_val), "test": split_record(tp, y_test), "has_test": True},
        val_probs=vp, test_probs=tp)
    md = report.write_report(tmp_path)[0].read_text()
    with command_line():
        command = ensemble_words(tmp_path)
    assert (f"**Warning:** this ensemble was selected from {known} candidates; the pool holds "
            f"{known + 1} usable now (1 added since, e.g. by a later tune): run {command} to "
            "select from them all.") in md, md
    ensemble.run_ensemble(tmp_path, budget=6)
    assert "added since" not in report.write_report(tmp_path)[0].read_text()


def test_a_missing_ranking_is_said_once_with_the_runs_own_rank_command(
        tmp_path, figures_not_drawn):
    """With ranking.json gone, the report said "There is no ranking yet … run `hubensemble
    rank --catalogue FILE --data SPEC --out RUN`" in each of three sections: the run records
    its catalogue file (its entries' sources) and data. Said once, with them, the later
    sections pointing to it (as the ensemble's, 9e0bd5a). Fails before: three times, FILE
    and SPEC."""
    make_full_run(tmp_path, robustness=False)
    cat = tmp_path / "c.yaml"
    cat.write_text("modules: []\n")
    meta = read_json(tmp_path / "run.json")
    Run(tmp_path).update(data={**meta["data"], "args": {"spec": "sklearn:digits", "seed": 2}},
                         modules={n: {"name": n, "handle": f"/zoo/{n}", "source": f"{cat}:{i}"}
                                  for i, n in enumerate(MODULES, 2)})
    (tmp_path / "ranking.json").unlink()
    md = report.write_report(tmp_path)[0].read_text()
    assert md.count("There is no ranking yet") == 1, md
    assert (f"There is no ranking yet (ranking.json is missing): run `hubensemble rank "
            f"--catalogue {cat} --data sklearn:digits --data-seed 2 --out {tmp_path}`.") in md
    assert md.count("Not shown: there is no ranking.json (see \"Ranking\").") == 2, md


def test_the_summarys_total_says_whose_seconds_and_why_report_md_differs():
    """A fit's summary said "total 13 min 43.7 s (the last run: 13 min 26.6 s)" beside
    report.md's "total 13 min 41.1 s": "the last run" meant this command, the seconds of
    earlier runs that stopped in a stage and of reused stages were one figure, and nothing
    said the report's table is written before its own stage's time is known. Fails before:
    "(the last run: ". Reference: the sums of the records' seconds, parsed back."""
    from types import SimpleNamespace

    from hubensemble.report.fmt import duration
    from hubensemble.report.runsections import _stages_section
    from hubensemble.report.write import stage_time_line

    stages = {"rank": {"seconds": 62.5, "reused": True},
              "tune": {"seconds": 864.0, "interrupted_seconds": 391.5},
              "cost": 2.0, "ensemble": {"seconds": 4.0, "command": "ensemble"},
              "export": 9.5, "report": 2.6}
    line = stage_time_line(stages)
    assert "last run" not in line, line
    total = 62.5 + 864.0 + 2.0 + 4.0 + 9.5 + 2.6
    this = 864.0 - 391.5 + 2.0 + 9.5 + 2.6
    assert line.endswith(
        f"; total {duration(total)}: {duration(this)} this command's, {duration(391.5)} "
        "earlier runs' that stopped in tune (their unfinished work included), "
        f"{duration(62.5)} reused from earlier runs, {duration(4.0)} other commands'; "
        f"report.md's table was written during the report stage, before its {duration(2.6)} "
        "were known"), line
    # The report's table, written before the report stage recorded its time: the total
    # above without it.
    written = {k: v for k, v in stages.items() if k != "report"}
    (table,) = _stages_section(SimpleNamespace(meta={"stages": written})).blocks
    assert table.rows[-1][:2] == ["total", duration(total - 2.6)], table.rows[-1]
    # All of it this command's, and no report stage: the total alone.
    assert stage_time_line({"rank": 3.0, "tune": 5.0}).endswith("; total 8.0 s")


def test_the_stage_tables_planned_trials_are_said_for_people_not_as_json():
    """The "Time per stage" showed tune's planned trials as raw JSON, `trials =
    {"hyper":["hyper-0000-…"]}`, in report.md with escaped brackets. Fails before: the cell
    held `trials = {`. Reference: the record's own ids and counts."""
    from types import SimpleNamespace

    from hubensemble.report.render import render_html, render_markdown
    from hubensemble.report.runsections import _stages_section

    hyper = ["hyper-0000-3f2a", "hyper-0001-9c1d"]
    probe = [f"probe-{i:04d}-ab" for i in range(5)]
    stages = {"tune": {"seconds": 12.0, "trials": {"hyper": hyper, "probe": probe}},
              "report": 0.8}
    sec = _stages_section(SimpleNamespace(meta={"stages": stages}))
    (table,) = sec.blocks
    cell = table.rows[0][2]
    assert cell == ("planned trials: hyper: 2 trials (hyper-0000-3f2a, hyper-0001-9c1d); "
                    f"probe: 5 trials ({', '.join(probe[:3])}, …)"), cell
    md, html = render_markdown("r", [sec]), render_html("r", [sec])
    assert cell in md and "{" not in md and "\\[" not in md, md
    assert "hyper: 2 trials (hyper-0000-3f2a, hyper-0001-9c1d)" in html
    # A record of another shape is still shown as it is.
    odd = {"tune": {"seconds": 1.0, "trials": "x"}}
    (table,) = _stages_section(SimpleNamespace(meta={"stages": odd})).blocks
    assert table.rows[0][2] == 'trials = x', table.rows[0]


def test_tunes_summary_names_a_chief_and_workers_only_for_a_chief_worker_sweep(
        tmp_path, capsys):
    """tune's summary ended its failed trials' way on "then run the same command again (a
    chief/worker sweep: its chief's and each worker's)" after a one-process `tune` too,
    which has no chief nor worker; and said "the 1 failed trial is done: running the same
    command again reuses it", not that it is not retried (the candidate counts as finished:
    `sweepsummary.finished_candidate`). A worker's summary (the command line's, and one made
    holding a sweep process's lock, as `run_tune` with a tuner id does) names the chief and
    workers; a one-process sweep's (the run's lock: `tune` without --tuner-id, checked by
    hand on this folder) does not; both say the trial is not retried and how to retry it.
    Fails before: the one-process summary's chief/worker words."""
    from types import SimpleNamespace

    from hubensemble.cli import main
    from hubensemble.sweepsummary import format_summary, summarize
    from sweepfiles import WORKER, finished_sweep

    run = finished_sweep(tmp_path / "run")
    assert main(WORKER + ["--run", str(run)]) == 0
    worker = capsys.readouterr().out
    found = candidate.scan(run / "candidates")[0]
    plan = [SimpleNamespace(trial_id=c.trial) for c in found]
    (trial,) = [c.trial for c in found if c.status == "failed"]
    with Run(run).lock("tune"):
        one = format_summary(summarize(Run(run), plan, sweep="seeds"))
    with Run(run).lock("tune", member="tuner1"):
        member = format_summary(summarize(Run(run), plan, sweep="seeds"))
    way = (f"  running the same command again does not retry the 1 failed trial (a failed "
           f"trial counts as finished). To retry it once its cause is fixed, remove its "
           f"folder (`(cd {run / 'candidates'} && rm -r {trial})`), then run the same "
           "command again")
    assert way in one.splitlines() and "chief/worker" not in one, one
    both = way + " (a chief/worker sweep: its chief's and each worker's)"
    assert both in worker.splitlines(), worker
    assert both in member.splitlines(), member


def test_the_reports_distill_command_distils_the_same_student_again(
        full_run, tmp_path, figures_not_drawn):
    """The report cited the student as `hubensemble distill --run RUN`: without the
    student's module and the options it was distilled with (its trial.json's
    "train_batch_size", "init_rule", "steps_scale" as given), it distilled another student,
    or the same one at another batch. The command names them
    (`distillcompare.distilled_with`'s flags). Fails before: the bare command."""
    from hubensemble.text import shell

    run, _ = _copy_of(full_run, tmp_path)
    members = [m["trial"] for m in read_json(run / "ensemble.json")["members"]]
    test = {"accuracy": 0.7, "nll": 0.5, "ece": 0.05}
    atomic_write_json(run / "distill.json", {
        "student": {"module": "small one", "test": test, "val": test,
                    "cost": {"gflops": 0.02, "params": 1234}, "path": "distill/s"},
        "teacher": {"members": members}, "gap_closed": 0.5, "cost_ratio": 2.0,
        "gap": {"n": 50, "images": 9, "z": 2.7, "significant": True, "student_images": 4}})
    (run / "distill" / "s").mkdir(parents=True)
    atomic_write_json(run / "distill" / "s" / "trial.json", {
        "trial": "distilled-small", "module": "small one", "profile": "quick",
        "train_batch_size": 4, "init_rule": "module", "steps_scale": 0.5, "mixup": 0.2,
        "lr_scale": 1.0})
    joined = " ".join(_report_of(run)[0].split())
    command = (f"hubensemble distill --run {shell(str(run))} --student 'small one' "
               "--distill-init module --distill-steps 0.5 --train-batch-size 4")
    assert f"The distilled student (`{command}`, Hinton et al. 2015)" in joined, joined
    # Not given: no --train-batch-size (null), the defaults left out.
    atomic_write_json(run / "distill" / "s" / "trial.json", {
        "trial": "distilled-small", "module": "small one", "train_batch_size": None,
        "init_rule": "best"})
    joined = " ".join(_report_of(run)[0].split())
    command = f"hubensemble distill --run {shell(str(run))} --student 'small one'"
    assert f"The distilled student (`{command}`, Hinton et al. 2015)" in joined, joined


@pytest.mark.parametrize("content, said", [
    (None, "does not exist; check `weights:` on the entry"),
    (b"", "is not an HDF5 file: it holds nothing (0 bytes); replace it with the weights "
          "file, or check `weights:` on the entry"),
    (b"<html>gone</html>", "is not an HDF5 file: it holds "),
])
def test_a_weights_file_is_labelled_the_same_whatever_went_wrong(tmp_path, content, said):
    """A ``keras:NAME`` entry's `weights:` file that is missing was "[keras weights]" in the
    failure and skip lists, an empty one "[load]" (Keras' refusal, after TensorFlow, with
    its own words): the same file, labelled by where it broke. Each is "[keras weights]",
    the loader's error and rank's before TensorFlow (`catalogue_here.missing_here`), with
    what is wrong with the file. Fails before: the empty and the web page pass both."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.catalogue_here import WEIGHTS_STAGE, missing_here
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub.locate import locate

    path = tmp_path / "w.weights.h5"
    if content is not None:
        path.write_bytes(content)
    spec = ModuleSpec(name="k", handle="keras:MobileNetV3Small", weights=str(path))
    ((_, before),) = missing_here([spec])
    with pytest.raises(ModuleLoadError) as loaded:
        locate("keras:MobileNetV3Small", name="k", weights=str(path))
    head = f"[keras weights] module 'k', handle 'keras:MobileNetV3Small': the weights file {path} "
    for error in (before, loaded.value):
        assert error.stage == WEIGHTS_STAGE and str(error).startswith(head + said), str(error)


def test_a_new_gflops_limit_no_candidate_met_is_read_before_an_earlier_ensembles_options(
        tmp_path):
    """A fit with a new --max-gflops that no candidate meets, after an earlier ensemble: the
    report read run.json's "ensemble" -> "options" (the earlier ensemble's, no limit) before
    "fit" -> "options", and said the plain ensemble command. Neither record holds a time;
    the ensemble's stage record says which is newer (`stagerecords.newer_first`: its key is
    not the last fit's, so that fit's ensemble never selected). An ensemble under the last
    fit's key keeps its own options first. Fails before: no budget words."""
    from hubensemble.cost import Cost, machine_info, write_run_costs
    from hubensemble.rundir import Run

    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    cands = [c for c in candidate.scan(path / "candidates")[0] if c.ok]
    write_run_costs(path, {c.trial: Cost(c.module, None, 32, C, macs=int(5e7), params=1000,
                                         latency_ms={"1": 2.0})
                           for c in cands}, machine_info())
    (path / "ensemble.json").unlink()
    run = Run(path)
    limit = dict(ensemble_budget=6, max_gflops=1e-6, max_latency_ms=None)
    run.update(ensemble={"options": dict(limit, max_gflops=None)},
               fit={"options": limit, "keys": {"ensemble": "the last fit's"}},
               stages={"ensemble": {"key": "an earlier fit's", "done": True}})
    text, _ = _report_of(path)
    unmet = "no candidate fits the inference budget the run records"
    assert unmet in text, text
    run.update(stages={"ensemble": {"key": "the last fit's", "done": True,
                                    "command": "ensemble"}})
    assert unmet not in _report_of(path)[0]


def test_the_closing_tables_way_on_of_one_failed_trial_is_singular(
        tmp_path, figures_not_drawn):
    """fit's closing table said "no ensemble yet: all 1 trials of the sweep failed: once
    their cause is fixed, remove their folders" of a sweep of one trial; and the cost
    section "1 of the 2 members have no measured cost" (test_report's and test_cost's
    tests of it now say "has"). Fails before: "all 1 trials"."""
    from hubensemble.hyperrule import PROFILES

    path = tmp_path / "run"
    make_ranked_run(path, {"alpha": MODULES["alpha"]})
    Run(path).update(tune={"sweep": "probe", "sweeps": {"probe": {
        "profile": PROFILES["quick"].to_json(), "budget": 1}}})
    atomic_save_npy(path / "labels" / "val.npy", np.zeros(N_VAL, np.int64))
    write_candidate(path / "candidates", {"trial": "probe-0000-alpha",
                                          "module": "alpha", "hparams": {},
                                          "status": "failed", "reason": OOM, "has_test": False})
    first = report.summary_table(path).splitlines()[0]
    assert first == ("no ensemble yet: the 1 trial of the sweep failed: once its cause is "
                     "fixed, remove its folder (the command is below), then run `hubensemble "
                     f"tune --run {path} --sweep probe --budget 1 --profile quick`, then "
                     f"`hubensemble ensemble --run {path}`"), first
    # The report's next step too (391's report: it still said "all 1 trials … their
    # folders" after the closing table was made singular; report.fmt.all_failed_words).
    md = " ".join(report.write_report(path)[0].read_text().split())
    assert ("the 1 trial of the sweep failed: once its cause is fixed, remove its folder (the "
            "command is under \"What failed and why\"), then run `hubensemble tune --run") in md
    assert "all 1 trials" not in md


def test_duplicates_are_said_ranked_as_an_earlier_entry_not_unranked(
        tmp_path, figures_not_drawn):
    """A new-user check: two entries refused as `duplicate` of an earlier one (its files or
    embeddings) were counted in "3 modules could not be ranked" in fit's closing table and
    the report, and the Ranking said "7 modules scored by knn" where 4 were scored. Fails
    before: "could not be ranked" counts 3, and "7 modules scored"."""
    rows = ranking_rows(MODULES)
    for name, earlier in (("alpha_copy", "alpha"), ("gamma_keras", "gamma")):
        rows.append({**rows[0], "name": name, "handle": f"/zoo/{name}", "status": "failed",
                     "score": None, "stage": "duplicate", "index": len(rows),
                     "reason": f"module {name}: loads the same module as {earlier!r}"})
    Ranking(metric="knn", k=1, rows=rows, selected=list(MODULES),
            selection={"rule": "top_k", "top_k": len(MODULES)}, examples=90).write(tmp_path)
    Run(tmp_path).update(data=data_section())
    scored = sum(r["status"] == "ok" for r in rows)
    unranked = [r["name"] for r in rows if r["status"] != "ok" and r["stage"] != "duplicate"]
    assert (scored, unranked) == (4, ["broken"])  # independent of the report's split
    text = report.summary_table(tmp_path)
    assert f"skipped: 1 module could not be ranked: broken ({SHA})" in text, text
    assert ("skipped: 2 entries were ranked as earlier entries (duplicates): alpha_copy "
            "(module alpha_copy: loads the same module as 'alpha'); gamma_keras") in text, text
    md, _ = report.write_report(tmp_path)
    md = shown(md.read_text())
    assert (f"{scored} modules scored by `knn` (k = 1) on 90 training examples, best first "
            f"(of {len(rows)} entries; 2 ranked as earlier entries (duplicates); 1 could not "
            "be ranked); selection rule") in md, md
    failed = md[md.index("## What failed and why"):]
    assert "Modules that could not be ranked (1):" in failed
    assert "Entries ranked as an earlier entry (2; the same files or embeddings" in failed


def test_a_probe_ensembles_settings_are_shown_in_a_probes_terms(tmp_path, figures_not_drawn):
    """A new-user check: a probe ensemble's members said "Shared by every member: kind =
    probe, steps = 1000" and a weight_decay column: its L-BFGS limit and L2 λ, unexplained.
    Fails before: "steps = 1000" and the weight_decay column."""
    from hubensemble.sweeps import PROBE_MAX_ITER, probe_sweep

    path = tmp_path / "run"
    make_full_run(path)
    ens = read_json(path / "ensemble.json")
    configs = probe_sweep()
    for i, m in enumerate(ens["members"]):
        m["hparams"] = configs[i % len(configs)]
    atomic_write_json(path / "ensemble.json", ens)
    md, _ = report.write_report(path)
    text = md.read_text()
    section = text[text.index("## Ensemble members"):]
    section = section[:section.index("\n## ")]
    header = next(ln for ln in section.splitlines() if ln.startswith("| trial"))
    names = [c.strip() for c in header.strip("|").split("|")]
    assert "weight_decay" not in names and "steps = " not in section, section
    assert names[-1] == "l2_strength", names  # the probes' λ differ: a column
    assert (f"Shared by every member: kind = probe, lbfgs_max_iterations = {PROBE_MAX_ITER}."
            in section), section
    assert "A probe's l2_strength is λ of its penalty" in shown(section), section


def test_the_members_section_says_how_the_profile_scaled_the_papers_settings(
        tmp_path, figures_not_drawn):
    """A new-user check: a cpu run's members had lr 1.4e-5 and steps 40 where the paper's A.2
    space is lr 1e-4…1e-1 and steps 500…16k, with no word of the profile's scaling. Fails
    before: no "scaled by the run's profile cpu" line."""
    from hubensemble.hyperrule import PROFILES

    path = tmp_path / "run"
    make_full_run(path)
    cpu = PROFILES["cpu"]
    Run(path).update(tune={"sweep": "hyper", "sweeps": {"hyper": {"profile": cpu.to_json(),
                                                                  "budget": 12}}})
    md, _ = report.write_report(path)
    text = shown(md.read_text())
    section = text[text.index("## Ensemble members"):]
    section = section[:section.index("\n## ")]
    lo = 1e-4 * 0.625 * 0.001  # A.2's lowest lr x cpu's lr_scale x bn_lr_scale, by hand
    assert (cpu.lr_scale, cpu.bn_lr_scale, cpu.step_scale) == (0.625, 0.001, 0.02)
    assert ("Fine-tuning settings are the paper's scaled by the run's profile cpu: steps × "
            "0.02 clamped to 40…200 (A.2's 500…16000 → 40…200); lr × 0.625") in section, section
    assert f"lr × 0.001 more (A.2's 0.0001…0.1 → {lo:g}…" in section, section
    assert "resize_factor 1.0 in place of A.3's pre-crop resize U(1.05, 1.30)" in section


def test_the_overview_and_ranks_table_count_duplicates_as_ranked_under_an_earlier_entry(
        tmp_path, figures_not_drawn):
    """After the Ranking's count, the Overview still said "Ranked 7 modules (3 failed)" and
    rank's own table "ranked 4 of 7 modules; 3 failed (above)", each line "failed
    alpha_copy: … loads the same module as 'alpha'": two of the three were ranked, under an
    earlier entry (396's report). Fails before: "(3 failed)" in both."""
    rows = ranking_rows(MODULES)
    for name, earlier in (("alpha_copy", "alpha"), ("gamma_keras", "gamma")):
        rows.append({**rows[0], "name": name, "handle": f"/zoo/{name}", "status": "failed",
                     "score": None, "stage": "duplicate", "index": len(rows),
                     "reason": f"module {name}: loads the same module as {earlier!r}"})
    ranking = Ranking(metric="knn", k=1, rows=rows, selected=list(MODULES),
                      selection={"rule": "top_k", "top_k": len(MODULES)}, examples=90)
    ranking.write(tmp_path)
    Run(tmp_path).update(data=data_section())
    scored = sum(r["status"] == "ok" for r in rows)
    md, _ = report.write_report(tmp_path)
    md = shown(md.read_text())
    assert (f"Ranked {scored} modules (of {len(rows)} entries; 2 ranked as earlier entries "
            f"(duplicates); 1 could not be ranked), selected {len(MODULES)}") in md, md
    table = ranking.summary().splitlines()
    assert (f"ranked {scored} of {len(rows)} modules; 2 ranked as earlier entries "
            "(duplicates), 1 failed (above)") in table, table
    # fit's selection line, and one duplicate in the singular (399's check: "1 failed").
    assert ranking.selection_words().endswith(
        "2 ranked as earlier entries (duplicates), 1 failed (warned above)")
    one = dataclasses.replace(ranking, rows=rows[:-1])
    assert one.selection_words().endswith(
        "1 ranked as an earlier entry (a duplicate), 1 failed (warned above)")
    assert "  duplicate alpha_copy: module alpha_copy: loads the same module as 'alpha'" in table
    assert any(t.startswith("  failed broken") for t in table), table


def test_the_overview_says_why_an_ensemble_below_its_best_single_on_test_was_kept(
        tmp_path, figures_not_drawn):
    """A new user's check: the Overview showed "Test accuracy 0.8663 (ensemble) vs 0.8672
    (best single)" without a word that the one-se rule kept the larger ensemble on
    validation alone. Fails before: no clause after the NLL."""
    path = tmp_path / "run"
    make_full_run(path)
    ens = read_json(path / "ensemble.json")
    ens["size_rule"] = {**ens["size_rule"], "rule": "one-se", "size": 3, "best_size": 1}
    e, b = ens["test"]["ensemble"], ens["test"]["best_single"]
    e["accuracy"], b["accuracy"] = 0.8663, 0.8672
    e["nll"], b["nll"] = 0.30, 0.35
    atomic_write_json(path / "ensemble.json", ens)
    md = " ".join(report.write_report(path)[0].read_text().split())
    assert ("vs 0.3500; its test accuracy came out worse than its best single's: the one-se "
            "rule kept 3 picks where validation was best at 1, on validation alone (see "
            "\"Ensemble size\")") in md, md[:3000]
    # Better on both, or the best validation size kept: no such words.
    e["accuracy"] = 0.9
    atomic_write_json(path / "ensemble.json", ens)
    assert "came out worse" not in report.write_report(path)[0].read_text()
    e["accuracy"], ens["size_rule"]["size"] = 0.8, 1
    atomic_write_json(path / "ensemble.json", ens)
    assert "came out worse" not in report.write_report(path)[0].read_text()


def test_the_closing_tables_size_line_counts_one_candidate_in_the_singular(tmp_path):
    # "ensemble size: 1 member (1 greedy pick) of 1 candidates" (397's check).
    path = tmp_path / "run"
    make_full_run(path)
    ens = read_json(path / "ensemble.json")
    ens["n_candidates"] = 1
    atomic_write_json(path / "ensemble.json", ens)
    (line,) = [t for t in report.summary_table(path).splitlines()
               if t.startswith("ensemble size:")]
    assert " of 1 candidate" in line and "candidates" not in line, line


def test_a_fit_without_corruptions_whose_trials_all_failed_says_two_sentences(
        tmp_path, figures_not_drawn):
    """A --no-corruptions fit whose one trial failed: the robustness section spliced "to
    measure them, " onto next_step's statement ("to measure them, the 1 trial of the sweep
    failed: …"). "to measure them, " leads only a "run …". Fails before: the splice."""
    path = tmp_path / "run"
    make_ranked_run(path, {"alpha": MODULES["alpha"]})
    atomic_save_npy(path / "labels" / "val.npy", np.zeros(N_VAL, np.int64))
    atomic_save_npy(path / "labels" / "test.npy", np.zeros(N_TEST, np.int64))
    Run(path).update(tune={"sweep": "probe", "sweeps": {"probe": {"budget": 1}}},
                     fit={"options": {"corruptions": False}})
    write_candidate(path / "candidates", {"trial": "probe-0000-alpha", "module": "alpha",
                                          "hparams": {}, "status": "failed", "reason": OOM,
                                          "has_test": False})
    text, _ = _report_of(path)
    said = " ".join(text[text.index("## Robustness"):text.index("## What failed")].split())
    assert "to measure them, the 1 trial" not in said, said
    assert ("fit ran with `--no-corruptions`, which evaluates none; and there is no ensemble "
            "to measure yet: the 1 trial of the sweep failed: once its cause is fixed, remove "
            "its folder") in said, said


@pytest.mark.parametrize("how", ["failed", "missing"])
def test_a_member_whose_trial_failed_since_is_not_called_missing_or_unreadable(
        full_run, tmp_path, how, figures_not_drawn):
    """A member whose trial.json now records a failed trial (tune ran it again since the
    ensemble chose it): the Overview said "1 of them missing or unreadable in candidates/",
    and its row "holds no usable candidate". Fails before: those words."""
    run, ens_record = _copy_of(full_run, tmp_path)
    trial = _member(ens_record, best=False)
    shutil.rmtree(run / "candidates" / trial)
    if how == "failed":
        write_candidate(run / "candidates", {"trial": trial, "module": "alpha", "hparams": {},
                                             "status": "failed", "reason": OOM,
                                             "has_test": True})
    text, _ = _report_of(run)
    overview = text[:text.index("## Data")]
    assert f"chosen by greedy selection on validation ce; 1 of them {how} (see" in overview, \
        overview
    if how == "failed":
        assert (f"candidates/{trial}/trial.json records the trial as failed ({OOM})"
                in " ".join(text.split())), text


def test_a_stray_folder_of_a_sweep_the_run_never_planned_is_moved_aside_not_tuned(
        tmp_path, figures_not_drawn):
    """candidates/hyper-0009-beta/trial.json = "{bad" in a probe-only run: its way on was
    "delete …, then run `hubensemble tune --run RUN --sweep hyper`", which starts a whole
    hyper sweep the run never planned. No tune redoes a folder of no sweep the run ran: it
    is deleted (or moved aside), and the report run again. Fails before: "--sweep hyper"."""
    path = tmp_path / "run"
    make_ranked_run(path, {"alpha": MODULES["alpha"]})
    y = np.zeros(N_VAL, np.int64)
    atomic_save_npy(path / "labels" / "val.npy", y)
    Run(path).update(tune={"sweep": "probe", "sweeps": {"probe": {"budget": 1}}})
    vp = probs_for(y, 1.0, np.random.default_rng(0))
    write_candidate(path / "candidates", {"trial": "probe-0000-alpha", "module": "alpha",
                                          "hparams": {}, "kind": "probe", "status": "ok",
                                          "has_test": False, "val": split_record(vp, y)},
                    val_probs=vp)
    stray = path / "candidates" / "hyper-0009-beta"
    stray.mkdir()
    (stray / "trial.json").write_text("{bad")
    md = " ".join(report.write_report(path)[0].read_text().split())
    row = md[md.index("| hyper-0009-beta |"):].split(" |\n")[0]
    assert "--sweep hyper" not in md, row
    assert (f"delete `{stray}` (or move it aside: no sweep the run ran plans it), then run "
            f"`hubensemble report --run {path}`") in row, row


def test_a_failed_trials_way_on_in_a_run_without_an_ensemble_names_the_ensemble_after_it(
        full_run, tmp_path, figures_not_drawn):
    """A rank + tune run (no ensemble yet): a failed trial's row (and a left-out one's)
    ended at tune, where the next steps elsewhere name the stages after it; the redone
    trial is in no ensemble until one selects. With an ensemble it stays as it was. Fails
    before: no ", then `hubensemble ensemble"."""
    run, _ = _copy_of(full_run, tmp_path)
    failed = f"default-{2 * len(MODULES):04d}-{next(iter(MODULES))}"
    (run / "ensemble.json").unlink()
    md = " ".join(report.write_report(run)[0].read_text().split())
    row = md[md.index(f"| {failed} |"):]
    assert row.split(" | ")[3] == (
        f"delete `{run / 'candidates' / failed}`, then run `hubensemble tune --run {run} "
        f"--sweep default`, then `hubensemble ensemble --run {run} --budget 6`"), row


def test_a_gone_export_of_a_run_without_an_ensemble_names_the_ensemble_first(
        full_run, tmp_path, figures_not_drawn):
    """run.json records an export that is gone, and ensemble.json is gone too: the Overview
    said "write it again with `hubensemble export --run RUN`", which export refuses without
    an ensemble (fit's closing table: "run `hubensemble export …`"). Both name the ensemble
    first (`next_step`; the table's first line). Fails before: the export command alone."""
    run, _ = _copy_of(full_run, tmp_path)
    (run / "ensemble.json").unlink()
    text, _ = _report_of(run)
    overview = " ".join(text[:text.index("## Data")].split())
    assert (f"which run.json records, is gone; run `hubensemble ensemble --run {run} --budget "
            "6` (then export).") in overview, overview
    # fit's closing table too: its first line says the ensemble's command.
    table = report.summary_table(run)
    assert table.startswith(f"no ensemble yet: run `hubensemble ensemble --run {run}"), table
    assert ("which run.json records, is gone): an ensemble first (the first line says how)"
            in table and "hubensemble export" not in table), table


def test_every_dict_the_data_record_holds_is_checked_for_its_kind(tmp_path):
    """run.json's data.task and robustness.json's task hold what `Task.files_record` writes;
    a hand edit of one of its dicts into another kind is named, and the value dropped, by the
    report's kind checks (RUN_KINDS, ROBUSTNESS_KINDS) before a section reads it. The two
    lists missed "unservable" and "dark" (1693544d): a string there broke the Data section
    instead of being named. Fails before: those two keys unlisted."""
    from PIL import Image

    from hubensemble.data import load_task
    from hubensemble.report.checks import ROBUSTNESS_KINDS, RUN_KINDS, kind_problems

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                tmp_path / "d" / name / f"{i}.png")
    record = load_task(f"folder:{tmp_path / 'd'}", min_per_class=1).files_record()
    dicts = sorted(k for k, v in record.items() if isinstance(v, dict))
    assert {"oriented", "shrunk", "unservable", "dark"} <= set(dicts), dicts
    for key in dicts:
        assert ((("data", "task", key), dict) in RUN_KINDS
                and (("task", key), dict) in ROBUSTNESS_KINDS), key
        doc = {"data": {"task": {key: "edited"}}}
        assert kind_problems(doc, RUN_KINDS, drop=True) == [
            f'its "data.task.{key}" is a JSON string, expected an object'], key
        assert doc["data"]["task"][key] is None


@pytest.mark.slow
def test_a_fit_says_its_warnings_of_chance_once(tmp_path, in_process):
    """`fit` of a module whose embedding is constant (its probes at chance, kept by --profile
    quick) said "the ensemble is at chance on validation: …" and "1 ensemble member is at
    chance on validation …" twice each in one command's output: the ensemble stage's
    warnings, then the closing table's lines, word for word. Once each now (the stage's); a
    fit again, which reuses the stage (silent), says them in its table, once. Its ensemble
    is one member: one sentence says both (test_ensemble.py -k one_member_ensemble_at_chance).
    Fails before: 2 of each."""
    from conftest import make_tiny_model
    from hubensemble.hub import write_hub_module

    flat = make_tiny_model(seed=0, width=4)
    flat.set_weights([np.zeros_like(w) for w in flat.get_weights()])  # relu(0): constant
    module = write_hub_module(flat, str(tmp_path / "flat"))
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text(f"modules:\n  - {{name: flat, handle: {module}}}\n")
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, **{f"{x}_{s}": v for s, n in (("train", 64), ("val", 64), ("test", 32))
                      for x, v in (("x", rng.integers(0, 256, (n, 8, 8, 3), np.uint8)),
                                   ("y", np.arange(n) % 4))})
    args = ("fit", "--catalogue", catalogue, "--data", f"npz:{data}", "--out", tmp_path / "run",
            "--sweep", "probe", "--profile", "quick", "--no-corruptions")
    # Its ensemble is one member at chance: one sentence says both (the member's figures
    # are the ensemble's; `ensembletext.chance_sentences`).
    warnings = ("the ensemble is at chance on validation: ",
                ", learned next to nothing: ")
    code, out, err = in_process(*args)
    assert code == 0, err[-3000:]
    for said in warnings:
        assert (out + err).count(said) == 1, (said, out, err[-3000:])
        assert said in err  # the ensemble stage's warning
    code, out, err = in_process(*args)
    assert code == 0 and "ensemble: done before, reused" in err, err[-3000:]
    for said in warnings:
        assert (out + err).count(said) == 1, (said, out, err)
    assert f"warning: {warnings[0]}" in out and "ensemble member is at chance" not in out + err


def _backticks_shown(md: str, html: str) -> list:
    """The places report.md shows an escaped backtick (plain text holding Markdown's code
    marks, which the renderer escapes) and report.html a literal one outside <code>."""
    text = re.sub(r"<code>.*?</code>|<style.*?</style>", "", html, flags=re.S)
    return (re.findall(r".{0,60}\\`.{0,60}", md)
            + re.findall(r"[^<>]{0,60}`[^<>]{0,60}", text))


def test_the_reports_commands_are_code_never_escaped_backticks(full_run, tmp_path,
                                                               figures_not_drawn):
    """A new-user check: report.md said "(\\`evaluate --corruptions\\` adds them)" and
    report.html "(`evaluate --corruptions` adds them)" of a clean-only evaluation: plain text
    with Markdown's code marks, escaped. Each command is a code span: `…` in report.md,
    <code> in report.html; no escaped backtick anywhere, in a full run's report too."""
    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    clean = {**fake_robustness(with_single=True), "corruptions": {}, "mean_corrupted": None}
    write_evaluation(clean, path / "robustness.json")
    md, html = (f.read_text() for f in report.write_report(path))
    assert "no corrupted copies (`hubensemble evaluate --corruptions` adds them)" in md
    assert "no corrupted copies (<code>hubensemble evaluate --corruptions</code> adds" in html
    assert _backticks_shown(md, html) == []
    assert _backticks_shown(full_run[2], full_run[3]) == []


def test_the_budget_sentence_names_the_candidates_it_left_out_and_why(tmp_path,
                                                                      figures_not_drawn):
    """A new-user check: the Inference cost section said "Selected under the inference budget
    --max-gflops 1: a candidate that would take the ensemble over it was not eligible" and
    named none of those the budget left out without a cost to weigh, which the ensemble
    command prints: a module that could not be costed, and GFLOPs not counted (why, and that
    --max-latency-ms alone can take them). Now in the same words."""
    from hubensemble.cost import Cost, machine_info, write_run_costs

    path = tmp_path / "run"
    make_full_run(path, robustness=False)
    trials = [c.trial for c in candidate.scan(path / "candidates")[0] if c.ok]
    uncounted, failed = trials[0], trials[1]
    why = "not counted: this TensorFlow cannot freeze the graph (install a tested release)"
    costs = {t: Cost(t.split("-", 2)[2], None, 32, C, macs=None if t == uncounted else 10 ** 6,
                     params=1000, latency_ms={"1": 2.0, "64": 20.0},
                     macs_not_counted=why if t == uncounted else None)
             for t in trials if t != failed}
    write_run_costs(path, costs, machine_info(), failed={failed: "the module did not load"})
    result = ensemble.run_ensemble(path, budget=6, max_gflops=1.0).to_json()
    assert sorted(result["limits"]["not_costed"]) == sorted([uncounted, failed])
    md = shown(report.write_report(path)[0].read_text())
    section = md[md.index("## Inference cost"):]
    section = section[:section.index("\n## ")]
    assert f"left out (their module could not be costed): {failed}" in section
    assert (f"left out (GFLOPs not counted, so --max-gflops cannot take them; their params "
            f"and latency are measured: --max-latency-ms alone can): {uncounted}: {why}"
            in section), section


@pytest.mark.parametrize("damage", ["validation", "shape"])
def test_a_members_problem_shows_its_redo_command_as_code(full_run, tmp_path, damage,
                                                          figures_not_drawn):
    """A member's problem read from its folder ("… (run `hubensemble tune --run RUN --sweep
    default` to redo this trial)", `candidate.load_pool`'s words) was plain text in the
    reliability line and the failures tables: report.md showed \\`hubensemble tune …\\`
    escaped, report.html the backticks. Its commands are code spans now (`checks.note`)."""
    run, ens_record = _copy_of(full_run, tmp_path)
    folder = run / "candidates" / _member(ens_record, best=damage == "validation")
    if damage == "validation":
        (folder / "val_probs.npy").unlink()
    else:
        atomic_save_npy(folder / "test_probs.npy", np.full((N_TEST, 2), 0.5, np.float32))
    md, html = (f.read_text() for f in report.write_report(run))
    assert "to redo this trial" in md
    assert _backticks_shown(md, html) == []
    assert "<code>hubensemble tune --run " in html


@pytest.mark.parametrize("bad", [2, 5])
def test_the_files_read_row_names_the_skipped_files_as_the_data_summary_does(tmp_path, bad):
    """A new-user check: the report's "files read" row said "e.g. corrupt.jpg: …" of 2 skipped
    files, where the data summary fit prints named both. One rule now
    (`taskwords.skipped_detail`): the first 3 named, each reason once, then "and N more"."""
    from PIL import Image

    from hubensemble.data import load_task
    from hubensemble.report.datarows import accounting_rows

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                tmp_path / "d" / c / f"{i}.png")
    names = [f"corrupt{i}.jpg" for i in range(bad)]
    for name in names:
        (tmp_path / "d" / "a" / name).write_bytes(b"not an image")
    task = load_task(f"folder:{tmp_path / 'd'}")
    summary = task.summary()
    row = str(dict(accounting_rows(task.to_json()))["files read"])
    named = names[:3]
    for name in named:
        assert name in summary and f"a/{name}" in row, (summary, row)
    for name in names[3:]:
        assert name not in summary and name not in row, (summary, row)
    more = f"; and {bad - 3} more" if bad > 3 else None
    assert (more in row and more in summary) if more else "more" not in row, (summary, row)
    assert "e.g." not in row, row
