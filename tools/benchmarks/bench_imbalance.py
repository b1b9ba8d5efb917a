"""Long-tailed classes: does rank's leave-one-out kNN accuracy, which the large classes decide,
still order the modules as their downstream balanced accuracy does, and would its balanced
(per-class mean) version order them better?

    python tools/benchmarks/bench_imbalance.py --zoo DIR [--tasks digits,pbc_bloodcells8]
        [--data-dir ../shared/data] [--ratio 20] [--draws 5] [--profile quick] [--write-npz DIR]

Each module of the zoo's catalogue (`hubensemble zoo build`, DIR/catalogue.yaml) embeds each
task's train + val pool and its test split once. Each draw then takes a long-tailed subset
of the pool, geometric from the largest class down to 1/ratio of it (8 classes at ratio 20:
120, 78, 51, 33, 22, 14, 9, 6 images: 36% and 1.8% of the set; draw 0 in label order, the
others with the classes shuffled), carves validation off it as hubensemble does
(`data.splits.stratified_split`, 0.2), and scores every module on the carved training part
by three proxies: leave-one-out 1-NN accuracy (rank's default), its balanced accuracy (the
same predictions, each class's recall counted once: scikit-learn's balanced_accuracy_score)
and LogME; the reference is the test accuracy of a logistic-regression probe of its frozen
embeddings trained on the same part (the test split is balanced, so its accuracy is its
balanced accuracy). A linear probe stands in for fine-tuning, which would cost minutes per
module and draw; it is the usual reading of how transferable frozen features are (Kornblith
et al., CVPR 2019). Prints the first draw's figures per module, per draw and proxy the
Spearman correlation with the reference and the reference of the proxy's first module (ties
by name, as rank's top-K) and top 3, then their means over the draws. Nothing is asserted;
docs/rank.md quotes the figures.
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from benchargs import command_logging, description, existing_folder, integer, names  # noqa: E402

NPZ_TASKS = ("pbc_bloodcells8", "dsprites_orient10", "gtsrb10", "signdigits10")


def long_tail_counts(num_classes, largest, ratio):
    """Per-class image counts, geometric from `largest` (class 0) down to largest / ratio."""
    return [max(1, int(round(largest * ratio ** (-c / max(1, num_classes - 1)))))
            for c in range(num_classes)]


def long_tailed_npz(task_name, data_dir, ratio, seed, out):
    """Writes OUT/TASK-lt.npz (x_train/y_train long-tailed, x_test/y_test the task's test
    split, class_names; no x_val, so hubensemble carves val off train, as for a user's data)
    and returns its path and the per-class counts: a file to run `hubensemble fit` on."""
    task, x, y = _pool(task_name, data_dir)
    keep = _long_tail(y, ratio, seed)
    path = pathlib.Path(out) / f"{task_name}-lt.npz"
    np.savez(path, x_train=x[keep], y_train=y[keep], x_test=task.test.images,
             y_test=task.test.labels, class_names=np.array(task.class_names))
    return path, np.bincount(y[keep]).tolist()


def _pool(task_name, data_dir):
    """(task, images, labels) of the task's train + val pool (digits: 800 + 200)."""
    from hubensemble.data import load_task

    task = load_task("sklearn:digits" if task_name == "digits"
                     else f"npz:{pathlib.Path(data_dir) / task_name}.npz", seed=0)
    return (task, np.concatenate([task.train.images, task.val.images]),
            np.concatenate([task.train.labels, task.val.labels]))


def _long_tail(y, ratio, seed):
    """Sorted indices into `y` of a long-tailed draw: class c (in a seeded random order of
    the classes) keeps long_tail_counts' c-th count, the largest 96% of the smallest class."""
    rng = np.random.default_rng(seed)
    num_classes = int(y.max()) + 1
    counts = long_tail_counts(num_classes, int(np.bincount(y).min() * 0.96), ratio)
    order = rng.permutation(num_classes) if seed else np.arange(num_classes)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), counts[i], replace=False)
                                   for i, c in enumerate(order)]))


def balanced(pred, labels):
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(labels, pred))


def probe_accuracy(train_x, train_y, test_x, test_y):
    """Test accuracy of a standardised logistic-regression probe (L2, C = 1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train_x, train_y)
    return float(np.mean(model.predict(test_x) == test_y))


def embed_pool(task, specs, profile):
    """{name: (pool embeddings [N, D], test embeddings)} of every module, in catalogue order:
    each module embeds the task once, and every draw takes rows of it."""
    from hubensemble.rank import embed

    out = {}
    for spec in specs:
        parts = [embed(spec, task, s, profile=profile).embeddings
                 for s in ("train", "val", "test")]
        out[spec.name] = (np.concatenate(parts[:2]), parts[2])
    return out


def score_draw(embeddings, y, y_test, ratio, seed):
    """Per module {name, knn, knn_balanced, logme, probe} on one long-tailed draw, its val
    carved off as hubensemble carves it (data.splits.stratified_split, 0.2, this seed), and
    the draw's (train counts, val counts)."""
    from hubensemble import proxies
    from hubensemble.data.splits import stratified_split

    keep = _long_tail(y, ratio, seed)
    tr, va, _ = stratified_split(y[keep], 0.2, 0.0, seed)
    train, val = keep[tr], keep[va]
    rows = []
    for name, (pool, test) in embeddings.items():
        pred = proxies.loo_knn_predict(pool[train], y[train], k=1)
        rows.append({
            "name": name,
            "knn": float(np.mean(pred == y[train])),
            "knn_balanced": balanced(pred, y[train]),
            "logme": proxies.logme(pool[train], y[train], num_classes=int(y.max()) + 1),
            "probe": probe_accuracy(pool[train], y[train], test, y_test)})
    return rows, np.bincount(y[train]).tolist(), np.bincount(y[val], minlength=y.max() + 1)


PROXIES = (("knn", "kNN accuracy (rank's default)"), ("knn_balanced", "kNN balanced accuracy"),
           ("logme", "LogME"))


def compare(rows):
    """{proxy: (Spearman with the probe, probe of its first, mean probe of its top 3)} and
    the best probe; a proxy's order breaks ties by name, as rank's top-K does."""
    from scipy.stats import spearmanr

    ref = np.array([r["probe"] for r in rows])
    out = {}
    for key, _ in PROXIES:
        score = np.array([r[key] for r in rows])
        order = sorted(range(len(rows)), key=lambda i: (-score[i], rows[i]["name"]))
        out[key] = (float(spearmanr(score, ref).statistic), ref[order[0]],
                    float(ref[order[:3]].mean()))
    return out, float(ref.max())


def table(rows):
    print(f"{'module':28s} {'kNN acc':>8s} {'kNN bal':>8s} {'LogME':>8s} {'probe test':>10s}")
    for r in sorted(rows, key=lambda r: -r["probe"]):
        print(f"{r['name']:28s} {r['knn']:8.4f} {r['knn_balanced']:8.4f} {r['logme']:8.4f} "
              f"{r['probe']:10.4f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--zoo", type=existing_folder, required=True,
                        help="a built zoo folder (holds catalogue.yaml)")
    parser.add_argument("--tasks", type=names(("digits",) + NPZ_TASKS, "task"),
                        default=["digits", "pbc_bloodcells8"])
    parser.add_argument("--data-dir", default=str(pathlib.Path(__file__).resolve().parents[3]
                                                  / "shared" / "data"),
                        help="the folder of the npz dev tasks (../shared/data)")
    parser.add_argument("--ratio", type=integer(2), default=20,
                        help="largest class / smallest class in the training set")
    parser.add_argument("--draws", type=integer(1), default=5,
                        help="long-tailed draws per task (seeds 0..N-1; seed 0 keeps the "
                             "classes in label order, the others shuffle which class is rare)")
    parser.add_argument("--profile", default="quick", choices=("paper", "cpu", "quick"))
    parser.add_argument("--write-npz", type=existing_folder, default=None,
                        help="also write each task's seed-0 draw there as TASK-lt.npz, for "
                             "`hubensemble fit --data npz:…`")
    args = parser.parse_args(argv)

    from hubensemble.catalogue import load_catalogue

    specs = load_catalogue(pathlib.Path(args.zoo) / "catalogue.yaml")
    for name in args.tasks:
        if args.write_npz:
            long_tailed_npz(name, args.data_dir, args.ratio, 0, args.write_npz)
        task, _, y = _pool(name, args.data_dir)
        embeddings = embed_pool(task, specs, args.profile)
        per_proxy = {key: [] for key, _ in PROXIES}
        bests = []
        for seed in range(args.draws):
            rows, train, val = score_draw(embeddings, y, task.test.labels, args.ratio, seed)
            print(f"\n== {name}, long-tailed 1:{args.ratio}, draw {seed}: carved train {train}, "
                  f"val {val.tolist()}; test {len(task.test)} (balanced); {len(rows)} modules, "
                  f"profile {args.profile}")
            if seed == 0:
                table(rows)
            figures, best = compare(rows)
            bests.append(best)
            for key, what in PROXIES:
                rho, first, top3 = figures[key]
                per_proxy[key].append(figures[key])
                print(f"{what:32s} Spearman {rho:+.3f}; its first: probe {first:.4f} "
                      f"(best {best:.4f}); its top 3: mean probe {top3:.4f}")
        print(f"\n== {name}: over {args.draws} draws (mean, min..max)")
        for key, what in PROXIES:
            rho, first, top3 = (np.array(v) for v in zip(*per_proxy[key]))
            print(f"{what:32s} Spearman {rho.mean():+.3f} ({rho.min():+.3f}..{rho.max():+.3f}); "
                  f"best probe - its first's {np.mean(np.array(bests) - first):.4f}; "
                  f"its top 3 mean probe {top3.mean():.4f}")
    return 0


if __name__ == "__main__":
    with command_logging():
        sys.exit(main())
