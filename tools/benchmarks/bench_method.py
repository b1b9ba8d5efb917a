"""Method evidence on real low-data tasks: the ensemble against its best member and baselines.

For every (task, pool, seed) it runs `hubensemble.fit` with the cpu profile and prints one row:
the best single member's and the ensemble's test accuracy and NLL, the ensemble size, and two
baselines measured on the same 800 training images (validation used only for choices):

- probe: logistic regression on the frozen embeddings of the best-ranked module, at the
  resolution rank embedded it, C chosen on validation accuracy (the "linear probe");
- cnn: a small CNN trained from scratch (three conv blocks, Adam), the epoch chosen on
  validation accuracy.

Then a summary line with the targets of the method-evidence issue: the share of rows where the
ensemble's test accuracy is at least the best single member's, whether its NLL is lower on
every row, and the mean accuracy gain. With ``--size-rules`` every row also shows the test
accuracy / NLL each ensemble-size rule would give on the same candidates (the selection is
recomputed from the candidates' probabilities; nothing is fine-tuned again).

A run whose pool holds probe and fine-tuned candidates (a real pool: ``default+probe``) also
shows, from the same candidates, the probe-only, fine-tune-only and mixed ensembles, each
module's best fine-tuned against its best probe (test accuracy, and the one picked on
validation), the seconds per candidate of each kind, and the failed candidates with their
reasons (`kind_pools`).

Tasks: the four dev tasks in ../shared/data (npz, fixed 800/200/test splits) and
``sklearn:digits`` (split by the seed). A seed S is the data seed (digits only: the npz
splits are fixed) and the fit seed (trial seeds, ensemble bootstrap).

Pools: ``zoo`` (default; the demo zoo, built on first use), ``real`` (modules written by
../shared/realmods/make_real_modules.py into --real-dir; without them a usage error, before
any work), ``real+zoo``.

    python tools/benchmarks/bench_method.py [--tasks digits gtsrb10 …] [--pool zoo]
        [--seeds 0 1 2] [--out DIR] [--json FILE] [--size-rules]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from benchargs import command_logging, file_target, folder_target, integer, once, option, refuse

ROOT = Path(__file__).resolve().parents[2]
DATA_ROOT = ROOT.parent / "shared" / "data"
TASKS = {
    "digits": "sklearn:digits",
    "pbc_bloodcells8": "npz:{root}/pbc_bloodcells8.npz",
    "dsprites_orient10": "npz:{root}/dsprites_orient10.npz",
    "gtsrb10": "npz:{root}/gtsrb10.npz",
    "signdigits10": "npz:{root}/signdigits10.npz",
}
POOLS = ("zoo", "real", "real+zoo")
PROBE_CS = tuple(10.0 ** e for e in range(-3, 4))
CNN_EPOCHS = 30


def catalogues(pool: str, real_dir: Path | None) -> list[str]:
    """The catalogue files of a pool (the demo zoo built first when it has the zoo)."""
    from hubensemble.catalogue import shipped_catalogues

    files = []
    if "zoo" in pool.split("+"):
        from hubensemble.zoo import ensure_zoo

        ensure_zoo("demo", progress=False)
        files += [str(p) for p in shipped_catalogues() if p.name == "demo.yaml"]
    if "real" in pool.split("+"):  # check_arguments made sure it is there
        files.append(str(real_dir / "real_modules.yaml"))
    return files


def embeddings(spec, task, resolution, batch=64):
    """float32 [N, d] embeddings of each split through the frozen module (HubLayer), the images
    resized by Task.dataset (the one resize policy) to the resolution rank used."""
    from hubensemble.hub import hub_layer_from_spec

    layer = hub_layer_from_spec(spec, trainable=False)
    out = {}
    for split in ("train", "val", "test"):
        ds = task.dataset(split, batch_size=batch, image_size=tuple(resolution))
        chunks = [layer(x, training=False).numpy() for x, _ in ds]
        out[split] = np.concatenate(chunks).astype(np.float32)
    return out


def probe_accuracy(emb, task) -> tuple[float, float]:
    """(test accuracy, chosen C) of a logistic-regression probe, C chosen on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(emb["train"])
    x = {k: scaler.transform(v) for k, v in emb.items()}
    best = None
    for c in PROBE_CS:
        clf = LogisticRegression(C=c, max_iter=2000)
        clf.fit(x["train"], task.train.labels)
        acc = clf.score(x["val"], task.val.labels)
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    return float(best[2].score(x["test"], task.test.labels)), best[1]


def cnn_accuracy(task, seed, size=32) -> float:
    """Test accuracy of a small CNN trained from scratch on the training split (epoch chosen
    on validation accuracy)."""
    import keras

    keras.utils.set_random_seed(seed)
    data = {s: task.dataset(s, batch_size=32, image_size=(size, size), shuffle=(s == "train"),
                            seed=seed) for s in ("train", "val", "test")}
    layers = [keras.Input((size, size, 3))]
    for width in (32, 64, 128):
        layers += [keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
                   keras.layers.BatchNormalization(), keras.layers.MaxPooling2D()]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.3),
               keras.layers.Dense(task.num_classes, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    best_acc, best_weights = -1.0, None
    for _ in range(CNN_EPOCHS):
        model.fit(data["train"], epochs=1, verbose=0)
        acc = model.evaluate(data["val"], verbose=0)[1]
        if acc > best_acc:
            best_acc, best_weights = acc, model.get_weights()
    model.set_weights(best_weights)
    return float(model.evaluate(data["test"], verbose=0)[1])


def size_rule_rows(run_dir, rules) -> dict:
    """{rule: {"size", "accuracy", "nll"}} on test for each ensemble-size rule, recomputed from
    the run's candidates (no fine-tuning)."""
    from hubensemble import ensemble

    out = {}
    for rule in rules:
        res = ensemble.select_ensemble(run_dir, size_rule=rule)
        test = res.get("test") or {}
        e = test.get("ensemble") or {}
        out[rule] = {"size": res["size"], "accuracy": e.get("accuracy"), "nll": e.get("nll")}
    return out


def mcnemar(a_right, b_right) -> dict:
    """The exact McNemar test of two classifiers on the same test images: `a_right`,
    `b_right` bool [N] (each image classified right). Returns {"a_only", "b_only" (images only
    that one gets right), "p" (two-sided binomial p-value of the split of the discordant
    images, scipy.stats.binomtest; 1.0 with none)} (McNemar 1947; the exact form as in
    Dietterich 1998, "Approximate statistical tests for comparing supervised classification
    learning algorithms")."""
    from scipy.stats import binomtest

    a_only = int(np.sum(a_right & ~b_right))
    b_only = int(np.sum(b_right & ~a_right))
    n = a_only + b_only
    p = binomtest(a_only, n, 0.5).pvalue if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": float(p)}


def kind_pools(run_dir) -> dict | None:
    """Issue 15's checks on a run whose pool mixes probe and fine-tuned candidates, recomputed
    from its candidates' stored probabilities (nothing is trained again); None when the run
    holds one kind only.

    Returns {"pools": {"probe" | "finetune" | "mixed": {"n", "size", "ens_acc", "ens_nll",
    "single_acc", "single_nll"}} (each pool selected as `hubensemble ensemble` does, with its
    default settings: greedy on validation cross-entropy, the one-se size rule; the best single
    is the one with the lowest validation cross-entropy), "modules": {module: {"probe_test",
    "finetune_test" (the best test accuracy of that kind: what the issue's target compares),
    "probe_valpick", "finetune_valpick" (the test accuracy of the one best on validation),
    "mcnemar", "mcnemar_valpick" (`mcnemar` of the fine-tuned against the probe, for each
    pair: a = fine-tuned)}},
    "seconds": {kind: [per-candidate seconds from trial.json]}, "failed": [{"trial", "kind",
    "reason"}], "lowest_val_acc": the lowest validation accuracy of a usable candidate}.
    """
    from hubensemble import candidate, ensemble, options
    from hubensemble.metrics import accuracy, metrics

    settings = options.defaults_for("ensemble")
    y_val = ensemble.load_labels(run_dir, "val")
    y_test = ensemble.load_labels(run_dir, "test")
    cands, _ = ensemble.load_candidates(run_dir)
    kind = {c.trial: c.hparams.get("kind", "finetune") for c in cands}
    if len(set(kind.values())) < 2:
        return None
    pools = {}
    for name, keep in (("probe", {"probe"}), ("finetune", {"finetune"}),
                       ("mixed", {"probe", "finetune"})):
        sub = [c for c in cands if kind[c.trial] in keep]
        val = np.stack([c.val_probs for c in sub])
        sel = ensemble.greedy_select(
            val, y_val, objective=settings["objective"], budget=settings["budget"],
            with_replacement=settings["with_replacement"], bootstrap=settings["bootstrap"],
            seed=settings["seed"], size_rule=settings["size_rule"])
        ids = list(sel.weights)
        test = ensemble.ensemble_probs(np.stack([sub[i].test_probs for i in ids]),
                                       {j: sel.weights[i] for j, i in enumerate(ids)})
        best = min(range(len(sub)), key=lambda i: (metrics(sub[i].val_probs, y_val)["nll"], i))
        e, s = metrics(test, y_test), metrics(sub[best].test_probs, y_test)
        pools[name] = {"n": len(sub), "size": sel.size, "ens_acc": e["accuracy"],
                       "ens_nll": e["nll"], "single_acc": s["accuracy"],
                       "single_nll": s["nll"]}
    modules = {}
    for k in ("probe", "finetune"):
        for module in dict.fromkeys(c.module for c in cands):
            own = [c for c in cands if c.module == module and kind[c.trial] == k]
            if not own:
                continue
            # Picked by validation: highest accuracy, ties to the lower cross-entropy.
            pick = max(own, key=lambda c: (accuracy(c.val_probs, y_val),
                                           -metrics(c.val_probs, y_val)["nll"]))
            best = max(own, key=lambda c: accuracy(c.test_probs, y_test))
            modules.setdefault(module, {}).update({
                f"{k}_test": accuracy(best.test_probs, y_test),
                f"{k}_valpick": accuracy(pick.test_probs, y_test),
                f"_{k}_right": best.test_probs.argmax(1) == y_test,
                f"_{k}_pick_right": pick.test_probs.argmax(1) == y_test})
    for m in modules.values():
        if "_probe_right" in m and "_finetune_right" in m:
            m["mcnemar"] = mcnemar(m["_finetune_right"], m["_probe_right"])
            m["mcnemar_valpick"] = mcnemar(m["_finetune_pick_right"], m["_probe_pick_right"])
        for key in [key for key in m if key.startswith("_")]:
            del m[key]
    # Seconds and failures from the candidate records (candidate.scan reads trial.json).
    seconds, failed = {}, []
    for c in candidate.scan(Path(run_dir) / "candidates")[0]:
        k = c.hparams.get("kind", "finetune")
        if c.status == "ok" and c.record.get("seconds") is not None:
            seconds.setdefault(k, []).append(float(c.record["seconds"]))
        elif c.status != "ok":
            failed.append({"trial": c.trial, "kind": k, "reason": c.reason})
    lowest = min(accuracy(c.val_probs, y_val) for c in cands)
    return {"pools": pools, "modules": modules, "seconds": seconds, "failed": failed,
            "lowest_val_acc": lowest}


def one_row(task_name, pool, seed, files, args) -> dict:
    import hubensemble
    from hubensemble.catalogue import load_catalogues
    from hubensemble.rundir import DataArgs

    spec = TASKS[task_name].format(root=args.data_root)
    data_args = DataArgs(spec=spec, seed=seed)
    task = data_args.load()
    out = Path(args.out) / f"{task_name}-{pool}-s{seed}"
    start = time.time()
    options = dict(profile="cpu", seed=seed, top_k=args.top_k, corruptions=False)
    if args.sweep:
        options["sweep"] = args.sweep
    elif "real" in pool.split("+"):
        # Real modules: probes and fine-tuned candidates in one pool (issue 15, target 3).
        options["sweep"] = "default+probe"
    result = hubensemble.fit(files, spec, str(out), data_args=data_args, progress=False,
                             **options)
    wall = time.time() - start
    test = result.ensemble.get("test") or {}
    ens, single = test.get("ensemble") or {}, test.get("best_single") or {}
    row = {"task": task_name, "pool": pool, "seed": seed, "size": result.ensemble["size"],
           "candidates": result.ensemble.get("n_candidates"),
           "single_acc": single.get("accuracy"), "single_nll": single.get("nll"),
           "ens_acc": ens.get("accuracy"), "ens_nll": ens.get("nll"), "fit_seconds": wall}
    best = result.ranking.ok_rows[0]
    specs = {s.name: s for s in load_catalogues(files)}
    t0 = time.time()
    emb = embeddings(specs[best["name"]], task, best["resolution"])
    row["probe_acc"], row["probe_C"] = probe_accuracy(emb, task)
    row["probe_module"], row["probe_seconds"] = best["name"], time.time() - t0
    if not args.no_cnn:
        t0 = time.time()
        row["cnn_acc"] = cnn_accuracy(task, seed)
        row["cnn_seconds"] = time.time() - t0
    row["kinds"] = kind_pools(out)
    if args.size_rules:
        from hubensemble.ensemble import SIZE_RULES

        row["rules"] = size_rule_rows(out, SIZE_RULES)
    return row


def fmt(v, digits=4):
    return "-" if v is None else f"{v:.{digits}f}"


def print_row(row):
    print(f"{row['task']:<18} {row['pool']:<9} {row['seed']:>4} {fmt(row['single_acc'])} "
          f"{fmt(row['ens_acc'])} {fmt(row['single_nll'])} {fmt(row['ens_nll'])} "
          f"{row['size']:>4} {fmt(row.get('probe_acc'))} {fmt(row.get('cnn_acc'))} "
          f"{row['fit_seconds']:>7.0f}", flush=True)
    kinds = row.get("kinds")
    if kinds:
        for name, r in kinds["pools"].items():
            print(f"    {name + '-only' if name != 'mixed' else 'mixed':<13} {r['n']:>2} "
                  f"candidates: best single {fmt(r['single_acc'])} (NLL "
                  f"{fmt(r['single_nll'])}), ensemble {fmt(r['ens_acc'])} (NLL "
                  f"{fmt(r['ens_nll'])}, size {r['size']})", flush=True)
        for module, m in kinds["modules"].items():
            ok = "ok" if m.get("finetune_test", -1) >= m.get("probe_test", 2) else "BELOW"
            print(f"    {module}: best fine-tuned {fmt(m.get('finetune_test'))} vs best probe "
                  f"{fmt(m.get('probe_test'))} {ok}{_paired(m.get('mcnemar'))} (picked on "
                  f"validation: {fmt(m.get('finetune_valpick'))} vs "
                  f"{fmt(m.get('probe_valpick'))}{_paired(m.get('mcnemar_valpick'))})",
                  flush=True)
        sec = {k: float(np.mean(v)) for k, v in kinds["seconds"].items()}
        if "probe" in sec and "finetune" in sec:
            print(f"    seconds per candidate: probe {sec['probe']:.1f}, fine-tune "
                  f"{sec['finetune']:.1f} (ratio {sec['probe'] / sec['finetune']:.3f}; "
                  f"target <= 0.1)", flush=True)
        print(f"    failed candidates: {len(kinds['failed'])}"
              + "".join(f"\n      {f['trial']} ({f['kind']}): {f['reason']}"
                        for f in kinds["failed"])
              + f"; lowest validation accuracy of a usable one {kinds['lowest_val_acc']:.3f}",
              flush=True)
    for rule, r in (row.get("rules") or {}).items():
        print(f"    size rule {rule:<12} size {r['size']:>2}  test acc {fmt(r['accuracy'])}  "
              f"nll {fmt(r['nll'])}", flush=True)


def _paired(test) -> str:
    """", images right only by the fine-tuned / only by the probe, McNemar p" (or "")."""
    if not test:
        return ""
    return f" [{test['a_only']}/{test['b_only']} images, McNemar p {test['p']:.2f}]"


def summary(rows) -> str:
    done = [r for r in rows if r["ens_acc"] is not None and r["single_acc"] is not None]
    if not done:
        return "summary: no rows"
    ge = sum(r["ens_acc"] >= r["single_acc"] for r in done)
    nll_lower = sum(r["ens_nll"] < r["single_nll"] for r in done)
    gain = np.mean([r["ens_acc"] - r["single_acc"] for r in done]) * 100
    probe = [r["ens_acc"] - r["probe_acc"] for r in done if r.get("probe_acc") is not None]
    text = (f"summary: {len(done)} rows; ensemble acc >= best single on {ge}/{len(done)} "
            f"({ge / len(done):.0%}; target >= 90%); ensemble NLL < best single on "
            f"{nll_lower}/{len(done)} (target all); mean acc gain {gain:+.2f} points "
            f"(target >= +1.0)")
    if probe:
        text += f"; mean gain over the linear probe {np.mean(probe) * 100:+.2f} points"
    return text


def markdown(rows) -> str:
    """The rows as the Markdown table the README shows."""
    lines = ["| task | pool | seed | best single acc | ensemble acc | best single NLL | "
             "ensemble NLL | size | linear probe acc | CNN from scratch acc |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['pool']} | {r['seed']} | {fmt(r['single_acc'])} | "
                     f"{fmt(r['ens_acc'])} | {fmt(r['single_nll'])} | {fmt(r['ens_nll'])} | "
                     f"{r['size']} | {fmt(r.get('probe_acc'))} | {fmt(r.get('cnn_acc'))} |")
    return "\n".join(lines)


def check_arguments(p, args) -> None:
    """Usage errors before any work (the demo zoo's build, minutes): a task or seed given
    twice (its row measured and counted twice), a task's data missing under --data-root
    (`check_spec`, the words `fit` would use after the zoo was built), and a --json whose
    rows cannot be read back (they are resumed from it: `args.resumed`, [] without one).
    Also a real pool without --real-dir's real_modules.yaml: it printed "(skipped)" and
    exited 0 having measured nothing (`--pool real+zoo` after building the demo zoo)."""
    from hubensemble.data.specs import check_spec

    if "real" in args.pool.split("+"):
        yaml = args.real_dir / "real_modules.yaml" if args.real_dir else None
        if yaml is None or not yaml.is_file():
            what = f"required with --pool {args.pool}" if yaml is None else (
                f"{yaml} does not exist")
            p.error(f"argument --real-dir: {what}; build the real modules with "
                    "../shared/realmods/make_real_modules.py --out DIR and pass --real-dir DIR")
    once(p, "--tasks", args.tasks)
    once(p, "--seeds", args.seeds)
    for name in args.tasks:
        refuse(p, "--data-root", check_spec, TASKS[name].format(root=args.data_root))
    args.resumed = []
    if args.json and Path(args.json).exists():
        # Resume: rows already measured (same task, pool and seed) are printed, not re-run.
        try:
            args.resumed = json.loads(Path(args.json).read_text())
            if not isinstance(args.resumed, list) or not all(
                    isinstance(r, dict) and {"task", "pool", "seed"} <= r.keys()
                    for r in args.resumed):
                raise ValueError("not a list of rows with task, pool and seed")
        except (OSError, ValueError) as e:
            p.error(f"argument --json: {args.json} holds no rows of this script to resume "
                    f"({e}); give a new file or delete it")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--pool", choices=POOLS, default="zoo")
    p.add_argument("--real-dir", type=Path, default=None,
                   help="folder written by make_real_modules.py --out")
    p.add_argument("--seeds", nargs="+", type=integer(0, 2**32 - 1), default=[0, 1, 2])
    p.add_argument("--top-k", type=integer(1), default=4,
                   help="modules fine-tuned (default 4, as the demo)")
    p.add_argument("--sweep", default=None, type=option("sweep"),
                   help="tune sweep (default: fit's default; default+probe for a real pool)")
    p.add_argument("--data-root", type=Path, default=DATA_ROOT)
    p.add_argument("--out", default=None, type=folder_target, metavar="DIR",
                   help="run folders (default: a temp folder)")
    p.add_argument("--json", default=None, type=file_target, metavar="FILE",
                   help="also write the rows to this JSON file; rows already in it are not "
                        "measured again")
    p.add_argument("--size-rules", action="store_true",
                   help="also show what every ensemble-size rule gives on each row")
    p.add_argument("--no-cnn", action="store_true", help="skip the from-scratch CNN baseline")
    p.add_argument("--markdown", action="store_true",
                   help="also print the rows as a Markdown table (as in the README)")
    args = p.parse_args()
    check_arguments(p, args)
    if args.out is None:
        import tempfile

        args.out = tempfile.mkdtemp(prefix="bench-method-")
    files = catalogues(args.pool, args.real_dir)
    from hubensemble.formats import versions

    v = versions()
    print(f"bench_method {time.strftime('%Y-%m-%d')}: pool {args.pool}, cpu profile, top-k "
          f"{args.top_k}; tensorflow {v['tensorflow']}, keras {v['keras']}, keras-tuner "
          f"{v['keras_tuner']}; run folders in {args.out}")
    print(f"{'task':<18} {'pool':<9} {'seed':>4} {'single':>6} {'ens':>6} {'s.NLL':>6} "
          f"{'e.NLL':>6} {'size':>4} {'probe':>6} {'cnn':>6} {'fit s':>7}")
    rows = args.resumed
    done = {(r["task"], r["pool"], r["seed"]) for r in rows}
    for row in rows:
        print_row(row)
    for task_name in args.tasks:
        for seed in args.seeds:
            if (task_name, args.pool, seed) in done:
                continue
            row = one_row(task_name, args.pool, seed, files, args)
            print_row(row)
            rows.append(row)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(summary(rows))
    if args.markdown:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("HUBENSEMBLE_QUIET_TF", "1")  # the zoo builder's workers too
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
