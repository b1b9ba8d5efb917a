"""Merging the rankings of shards (`run_rank(shard=(i, n))`, `hubensemble rank merge`)."""

from __future__ import annotations

import dataclasses
import json
import os

from hubensemble import options
from hubensemble.errors import HubensembleError, RunError
from hubensemble.fileio import atomic_write_bytes, check_dir_target
from hubensemble.rank.ranking import (KNN_METRICS, Ranking, _raise_if_none_ok, _rank_section,
                                      _sort_rows, check_tuned_modules, load_knn_predictions,
                                      load_ranking, repeated, select, selection_rule,
                                      write_knn_predictions)

_MERGE = options.defaults_for("merge")


def merge_rankings(shard_dirs, out_dir, *, top_k=_MERGE["top_k"],
                   threshold=_MERGE["threshold"], max_k=_MERGE["max_k"],
                   greedy=_MERGE["greedy"]) -> Ranking:
    """Combines the ranking.json of shard runs (`run_rank(shard=(i, n))`) into `out_dir`.

    Refuses shards of other data, metric, k, profile or catalogue, a set of shards with
    one missing or given twice, an `out_dir` that is a file or a folder of the user's
    (`Run.check_folder_is_ours`), and an `out_dir` whose candidates were tuned from a module
    the merged list drops or changes (`check_tuned_modules`). Copies the kNN predictions,
    recomputes the selection over all modules and writes ranking.json/.csv and run.json as
    `run_rank` does.
    """
    from hubensemble.rundir import Run

    shard_dirs = [str(d) for d in shard_dirs]
    parts = check_shards(shard_dirs, out_dir)
    first_dir, first = parts[0]
    selection = selection_rule(metric=first.metric, top_k=top_k, threshold=threshold,
                               max_k=max_k, greedy=greedy)
    metas = [(d, Run(d).meta()) for d in shard_dirs]
    data = metas[0][1].get("data")
    if data is None:
        raise RunError(f"{first_dir}/run.json records no data; rank that shard again")
    out_run = Run(out_dir)
    out_run.check_folder_is_ours("out_dir")  # as run_rank: a folder of the user's is no run
    check_dir_target(out_dir, "pass another out_dir")
    recorded = out_run.meta().get("data")
    if recorded and recorded["task"]["fingerprint"] != data["task"]["fingerprint"]:
        raise RunError(f"{out_dir} holds a run on other data ({recorded['args']['spec']}); "
                       "merge into a new --out folder")

    rows, modules, predictions = [], {}, {}
    for (d, r), (_, meta) in zip(parts, metas):
        rows.extend(r.rows)
        modules.update(meta.get("modules") or {})
        if r.metric in KNN_METRICS:
            predictions.update(load_knn_predictions(d, [row["name"] for row in r.ok_rows]))
    dupes = repeated(r["name"] for r in rows)
    if dupes:
        raise RunError(f"modules {dupes[:5]} appear in more than one shard of "
                       f"{', '.join(shard_dirs)}; were they ranked with different --shard?")
    check_tuned_modules(out_dir, modules)
    _raise_if_none_ok(rows)

    labels = None
    if selection["rule"] == "greedy":
        labels = Run(first_dir).labels_of("train")
    ranking = dataclasses.replace(first, rows=_sort_rows(rows), selected=[],
                                  selection=selection, shard=None, merged_from=shard_dirs)
    ranking.selected = select(ranking.rows, selection, predictions=predictions, labels=labels)
    write_knn_predictions(out_dir, {r["name"]: predictions[r["name"]]
                                    for r in ranking.ok_rows if r["name"] in predictions})
    ranking.write(out_dir)
    # The data record and labels travel with the ranking, so later stages run from out_dir.
    for split in ("train", "val", "test"):
        src = Run(first_dir).labels / f"{split}.npy"
        if src.exists():
            atomic_write_bytes(out_run.labels / f"{split}.npy", src.read_bytes())
    out_run.update(data=data, modules=modules,
                   rank=_rank_section(ranking, merged_from=shard_dirs))
    return ranking


def check_shards(shard_dirs, out_dir=None) -> list[tuple[str, Ranking]]:
    """[(folder, its Ranking)] of `shard_dirs` when they are one complete set of shards of
    the same ranking; RunError naming the folder(s) otherwise: missing, not ranked, a whole
    ranking (ranked without --shard), shards of other data, metric, k, profile, split or
    catalogue, a shard missing or given twice, or one that is `out_dir` (the merge would
    replace that shard's ranking). Reads their ranking.json only (no TensorFlow): `rank
    merge` checks before it loads TensorFlow or creates --out."""
    shard_dirs = [str(d) for d in shard_dirs]
    if not shard_dirs:
        raise HubensembleError("give the shard run folders to merge")
    if out_dir is not None and os.path.realpath(out_dir) in map(os.path.realpath, shard_dirs):
        # A new-user check: `rank merge S0 S1 --out S0` replaced shard S0 with the merge.
        raise RunError(f"--out {out_dir} is one of the shards to merge; merging into it "
                       "would replace that shard's ranking: pass a new --out folder")
    for d in shard_dirs:  # load_ranking's hint is for a run to rank, not a shard to find
        if not os.path.isdir(d):
            raise RunError(f"{d} does not exist; pass the run folders that `hubensemble rank "
                           "--shard I/N --out FOLDER` wrote, all N of them")
    parts = [(d, load_ranking(d)) for d in shard_dirs]
    whole = [d for d, r in parts if not r.shard]
    if whole:  # nothing to merge ("shard 0/1 given twice" for two, a copy for one, before)
        raise RunError(f"{', '.join(whole)}: a whole ranking, not a shard (ranked without "
                       "--shard I/N); merge the folders of `hubensemble rank --shard I/N`, "
                       "or rank again to select again (its embeddings are cached)")
    for field in ("metric", "k", "data_fingerprint", "profile", "split", "catalogue"):
        values = {}
        for d, r in parts:
            values.setdefault(json.dumps(getattr(r, field), sort_keys=True), []).append(d)
        if len(values) > 1:
            listed = "; ".join(f"{json.loads(v)!r} in {', '.join(ds)}"
                               for v, ds in values.items())
            raise RunError(f"cannot merge shards with a different {field}: {listed}; rank "
                           "every shard with the same --data, --catalogue, --metric, --k "
                           "and --profile")
    _check_shard_set(parts)
    return parts


def _check_shard_set(parts):
    counts = {(r.shard or (0, 1))[1] for _, r in parts}
    if len(counts) > 1:
        listed = ", ".join(f"{d} ({_shard_text(r.shard)})" for d, r in parts)
        raise RunError(f"the shards were cut into different counts: {listed}; rank every "
                       "shard with the same --shard I/N")
    n = counts.pop()
    seen = {}
    for d, r in parts:
        i = (r.shard or (0, 1))[0]
        if i in seen:
            raise RunError(f"shard {i}/{n} given twice: {seen[i]} and {d}")
        seen[i] = d
    missing = [i for i in range(n) if i not in seen]
    if missing:
        raise RunError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing: got "
                       f"{', '.join(f'{d} ({i}/{n})' for i, d in sorted(seen.items()))}; "
                       "rank the missing shards and merge them all")


def _shard_text(shard):
    return f"{shard[0]}/{shard[1]}" if shard else "unsharded"
