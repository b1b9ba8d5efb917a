"""Labels to check: how many of the training images `hubensemble.labelcheck` lists are
mislabelled, on tasks with a known share of their training labels flipped.

    python tools/benchmarks/bench_labelcheck.py --catalogue ZOO/catalogue.yaml
        [--data npz:../shared/data/signdigits10.npz,npz:../shared/data/gtsrb10.npz]
        [--rates 5,10] [--seed 223] [--profile cpu]
    python tools/benchmarks/bench_labelcheck.py --runs RUN[,RUN...] [--rates 5,10] [--seed 223]
    python tools/benchmarks/bench_labelcheck.py --cost 4000 [--dim 1280]

For each data set it embeds the training images once per catalogued module (rank's `embed`,
cached as rank caches it), then for the clean labels and for each rate flips that many
percent of the training labels to a random other class (numpy seed `--seed`), computes every
module's leave-one-out 1-NN predictions (`proxies.loo_knn_predict`) and 10 nearest
neighbours (`rank.knnfile.loo_neighbours`), what RUN/knn.npz holds, and prints: the best
module's leave-one-out accuracy, the Spearman correlation of the modules' scores with the
clean labels' (does the ranking change), and for each rule with its gates (`labelcheck`:
"neighbours", no neighbour of the 5 best modules carries the label; "1-NN", every module's
prediction contradicts it, the rule for a knn.npz without neighbours) the images listed, how
many were flips (precision) and the share of the flips listed (recall); then the precision
and recall of each rule's order (most modules agreeing first; the given label's share of
the neighbours, lowest first) at the first 1 % and 5 % of the training set and at the
1-NN rule's list length; and the neighbours' rule ungated with the set's mean share of the
given label among the neighbours and its list when the suggested label must hold at least
0.3, 0.4 or 0.5 of the neighbours (rules weighed against dsprites_orient10's ambiguous
clean-label images). On the clean labels every listed image counts as a false one, which it
may not be: look at them.

The same lines also count the flips the neighbours' rule misses only because every neighbour
carrying the (wrong) given label is itself a flip to that label (two flips of one class into
another, near each other, shielding each other), and list by a rule that lets at most t of
the neighbours carry the given label when half or more carry one other (alone, and with the
neighbours' rule).

With --runs it checks tuned run folders' validation labels instead
(`labelcheck.check_validation`, from the candidates' val_probs.npy; no model runs): for the
clean labels and each rate it flips that many percent of RUN/labels/val.npy (seed `--seed`),
chooses the voters again on the flipped labels (`labelcheck.validation_voters`) and prints
their validation accuracy, the best voter's cross-entropy on the flipped and the true labels,
the rule's list with its gates (precision, recall), and, gates aside, the lists at a
probability of 0.01, 0.05, 0.1 and 0.2, with and without the majority on one label, and by
the voters' mean probability. Flipping after the sweep is exact for probe trials, whose
validation tables do not depend on the validation labels.

With --cost N it measures, on N random embeddings of --dim dimensions in 10 clusters
(float32, no TensorFlow), what keeping the neighbours costs rank per module: the seconds and
the peak of numpy's allocations (tracemalloc) of the 1-NN predictions alone (rank before) and
of the 10 neighbours with the predictions voted from them (rank now), each the best of 3, and
their ratio.
"""

import argparse
import gc

import numpy as np

from benchargs import command_logging, description, integer, integers


def flipped_labels(y, classes, rate, seed):
    """(labels int [N] with round(rate N) of them moved to a random other class, the sorted
    indexes moved), numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(y), int(round(rate * len(y))), replace=False))
    out = np.array(y, np.int64)
    out[idx] = (out[idx] + rng.integers(1, classes, len(idx))) % classes
    return out, idx


def measure(embs, y, classes, percent, seed):
    """The figures of one data set with `percent` of its labels flipped (0: the clean ones)."""
    from scipy.stats import spearmanr

    from hubensemble.labelcheck import (TOP_MODULES, check_ranking, neighbour_suspects,
                                        suspect_labels)
    from hubensemble.proxies import loo_knn_predict
    from hubensemble.rank import Ranking
    from hubensemble.rank.knnfile import loo_neighbours

    given, flips = (flipped_labels(y, classes, percent / 100, seed) if percent
                    else (np.asarray(y), []))
    preds = {n: loo_knn_predict(x, given, k=1) for n, x in embs.items()}
    near = {n: loo_neighbours(x, metric="euclidean") for n, x in embs.items()}
    scores = {n: float(np.mean(p == given)) for n, p in preds.items()}
    clean = {n: float(np.mean(loo_knn_predict(x, y, k=1) == y)) for n, x in embs.items()}
    rho = spearmanr([clean[n] for n in embs], [scores[n] for n in embs]).correlation
    rows = [{"name": n, "status": "ok", "score": s}
            for n, s in sorted(scores.items(), key=lambda ns: -ns[1])]
    ranking = Ranking(metric="knn", k=1, rows=rows, selected=[])

    def found(listed):
        hit = int(np.isin(listed, flips).sum())
        return (f"{len(listed)}" + (f" (precision {hit / len(listed):.2f}, recall "
                                    f"{hit / len(flips):.2f})" if len(listed) and len(flips)
                                    else ""))

    line = (f"flipped {percent:>2}%: best kNN {max(scores.values()):.4f}, Spearman vs clean "
            f"{rho:.3f}")
    for rule, check in (("neighbours", check_ranking(ranking, preds, given, near)),
                        ("1-NN", check_ranking(ranking, preds, given))):
        line += (f"\n    {rule} rule: listed " + found([s.index for s in check.suspects])
                 + (f" ({check.skipped})" if check.skipped else ""))
    unanimous = [s.index for s in suspect_labels(np.stack(list(preds.values())), given)]
    top = np.stack([near[r["name"]] for r in rows[:TOP_MODULES]])
    share = (given[top] == given[None, :, None]).mean(axis=(0, 2))  # the given label's
    # Rules weighed against ambiguity (dsprites_orient10's clean-label images), gates aside:
    # the suggested label's share of the neighbours at least a third / 0.4 / a half, and
    # the set's mean share of the given label (mixed neighbourhoods: a set-level gate).
    listed = neighbour_suspects(top, given)
    line += (f"\n    neighbours rule, ungated, mean given-label share {share.mean():.3f}: "
             + "; ".join(f"suggested share >= {t}: " + found([s.index for s in listed
                                                              if s.score >= t])
                         for t in (0, 0.3, 0.4, 0.5)))
    # Flips shielding each other: a flip the rule misses only because every neighbour that
    # carries its (wrong) given label is itself a flip to that label.
    missed = sorted(set(np.asarray(flips).tolist()) - {s.index for s in listed})
    flipped = np.zeros(len(given), bool)
    flipped[np.asarray(flips, np.int64)] = True
    shielded = [i for i in missed if flipped[top[:, i][given[top[:, i]] == given[i]]].all()]
    line += (f"\n    flips the neighbours rule misses (ungated): {len(missed)}, shielded only by "
             f"other flips to the same label: {len(shielded)}")
    # A rule that lets a few neighbours carry the given label when most carry one other (two
    # flips shielding each other see each other in at most M of the M x K lists).
    m_k = top.shape[0] * top.shape[2]
    counts = np.zeros((len(given), classes), np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(given)), m_k),
                       given[top].transpose(1, 0, 2).ravel()), 1)
    own = counts[np.arange(len(given)), given]
    counts[np.arange(len(given)), given] = -1
    other = counts.max(axis=1)
    line += "\n    given label on at most t of the neighbours and >= half on one other: " + (
        "; ".join(f"t={t}: " + found(np.flatnonzero((own <= t) & (2 * other >= m_k)))
                  for t in (0, 1, 2, 3, 5)))
    line += "\n    the neighbours rule or that: " + "; ".join(
        f"t={t}: " + found(np.flatnonzero((own == 0) | ((own <= t) & (2 * other >= m_k))))
        for t in (1, 2, 3, 5))
    by_share = np.lexsort((np.arange(len(given)), share))
    for rule, order in (("1-NN order", unanimous), ("share order", by_share)):
        tops = [f"first {what} " + found(np.asarray(order[:n])) for what, n in (
            ("1%", max(1, round(0.01 * len(y)))), ("5%", max(1, round(0.05 * len(y)))),
            ("as 1-NN lists", len(unanimous)))]
        line += f"\n    {rule}, ungated: " + "; ".join(tops)
    return line


def measure_validation(run_dir, percent, seed):
    """The figures of one run folder's validation labels with `percent` of them flipped (0:
    the clean ones), from its candidates' val_probs.npy (`labelcheck.check_validation`)."""
    from hubensemble import ensemble as ens
    from hubensemble import metrics
    from hubensemble.labelcheck import check_validation, probability_suspects, validation_voters

    y = ens.load_labels(run_dir, "val")
    cands = ens.load_candidates(run_dir, n_val=len(y))[0]
    classes = cands[0].val_probs.shape[1]
    given, flips = (flipped_labels(y, classes, percent / 100, seed) if percent
                    else (np.asarray(y), []))

    def found(listed):
        hit = int(np.isin(listed, flips).sum())
        return (f"{len(listed)}" + (f" (precision {hit / len(listed):.2f}, recall "
                                    f"{hit / len(flips):.2f})" if len(listed) and len(flips)
                                    else ""))

    check = check_validation(cands, given)
    trials, probs = validation_voters(cands, given)
    accs = [metrics.accuracy(p, given) for p in probs]
    line = (f"flipped {percent:>2}%: {len(trials)} voters, validation accuracy "
            + "/".join(f"{a:.2f}" for a in accs) + "; the best voter's CE "
            f"{metrics.nll(probs[0], given):.3f} (on the true labels "
            f"{metrics.nll(probs[0], y):.3f})\n    rule: listed "
            + found([s.index for s in check.suspects])
            + (f" ({check.skipped})" if check.skipped else ""))
    # Rules weighed, gates aside: the threshold, the majority on one label, and the voters'
    # mean probability instead of each voter's.
    n = np.arange(len(given))
    p_given = probs[:, n, given]  # [M, N]
    mean = probs.mean(axis=0)
    variants = [(f"every voter < {low}" + (", majority" if major else ""), [
        s.index for s in probability_suspects(probs, given, low)] if major
        else np.flatnonzero((p_given < low).all(axis=0)))
        for low in (0.01, 0.05, 0.1, 0.2) for major in (True, False)]
    variants += [(f"voters' mean < {low}", np.flatnonzero(mean[n, given] < low))
                 for low in (0.05, 0.1)]
    line += "\n    ungated: " + "; ".join(f"{what}: {found(np.asarray(listed))}"
                                          for what, listed in variants)
    return line


def measure_cost(n, dim, seed=0):
    """Seconds and numpy peak bytes of rank's 1-NN predictions and of its 10 neighbours."""
    import time
    import tracemalloc

    from hubensemble.proxies import loo_knn_predict
    from hubensemble.rank.knnfile import NEIGHBOURS, loo_neighbours, neighbour_votes

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.normal(size=(10, dim))[y] * 2 + rng.normal(size=(n, dim))).astype(np.float32)
    out = {}
    for what, run in (("1-NN predictions (rank before)", lambda: loo_knn_predict(x, y, k=1)),
                      (f"{NEIGHBOURS} neighbours and the 1-NN votes from them (rank now)",
                       lambda: neighbour_votes(loo_neighbours(x, metric="euclidean"), y, 1))):
        best_s = best_b = None
        for _ in range(3):
            tracemalloc.start()
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            best_s = seconds if best_s is None else min(best_s, seconds)
            best_b = peak if best_b is None else min(best_b, peak)
        out[what] = (best_s, best_b)
        print(f"{what}: {best_s:.3f} s, numpy peak {best_b / 2**20:.1f} MiB", flush=True)
    (s1, b1), (s2, b2) = out.values()
    print(f"now / before: time {s2 / s1:.2f}x, peak memory {b2 / b1:.2f}x; kept: "
          f"{n * NEIGHBOURS * 4 / 2**20:.2f} MiB per module (int32 [N, {NEIGHBOURS}])")


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--catalogue", help="the modules (e.g. the demo zoo's); required "
                        "unless --cost or --runs")
    parser.add_argument("--runs", help="comma-separated run folders (tuned): check their "
                        "validation labels, flipped afterwards, from the candidates' "
                        "val_probs.npy")
    parser.add_argument("--data", default="npz:../shared/data/signdigits10.npz,"
                        "npz:../shared/data/gtsrb10.npz", help="comma-separated data specs")
    parser.add_argument("--rates", type=integers(1, what="percentages"), default=[5, 10],
                        help="percentages of training labels flipped (comma-separated)")
    parser.add_argument("--seed", type=int, default=223, help="seed of the flips")
    parser.add_argument("--profile", default="cpu", choices=("paper", "cpu", "quick"))
    parser.add_argument("--cost", type=integer(11),
                        help="measure rank's added cost on this many random embeddings")
    parser.add_argument("--dim", type=integer(1), default=1280,
                        help="their dimension (with --cost)")
    args = parser.parse_args(argv)
    if args.cost:
        measure_cost(args.cost, args.dim)
        return
    if any(r >= 100 for r in args.rates):
        parser.error(f"argument --rates: must be percentages below 100, got {args.rates}")
    if args.runs:
        for run in args.runs.split(","):
            print(f"{run}: validation labels", flush=True)
            for rate in [0, *args.rates]:
                print("  " + measure_validation(run, rate, args.seed), flush=True)
        return
    if not args.catalogue:
        parser.error("the following arguments are required: --catalogue (or --cost N, "
                     "or --runs)")
    from hubensemble.catalogue import load_catalogue
    from hubensemble.errors import HubensembleError

    try:  # before TensorFlow loads: a missing or broken catalogue is a usage error
        specs = load_catalogue(args.catalogue)
    except (OSError, HubensembleError) as e:
        parser.error(f"argument --catalogue: {e}")

    from hubensemble.data import load_task
    from hubensemble.hyperrule import get_profile
    from hubensemble.rank.embeddings import embed

    for spec in args.data.split(","):
        task = load_task(spec, progress=False)
        embs = {}
        for s in specs:
            embs[s.name] = embed(s, task, "train", profile=get_profile(args.profile)).embeddings
            gc.collect()
        print(f"{spec}: {len(task.train)} training images, {task.num_classes} classes, "
              f"{len(embs)} modules", flush=True)
        for rate in [0, *args.rates]:
            print("  " + measure(embs, task.train.labels, task.num_classes, rate, args.seed),
                  flush=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        main()
