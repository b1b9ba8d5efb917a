"""Step 1 of the method: rank modules by a cheap proxy over their embeddings; select the best.

Paper sections 2.3, 4.3 and C.4–C.8: every catalogued module embeds the task's training
images (frozen, evaluation preprocessing, through `hub.ModuleRuntime`, the call HubLayer and
the export use), is scored by leave-one-out kNN accuracy (or LogME / H-score), and the top-K,
those within τ of the best, or a greedy kNN ensemble go on to fine-tuning.

* `embeddings` — `embed`: batched embeddings through the module runtime, with a disk cache
  keyed by content (module fingerprint, preprocessing, task, split);
* `ranking` — scores, selection rules, `run_rank`;
* `record` — the `Ranking` record (ranking.json / .csv), `load_ranking`, `rule_text`;
* `knnfile` — RUN/knn.npz, the leave-one-out kNN predictions a kNN ranking writes;
* `shards` — which modules a shard ranks, `--shard auto` from a cluster array job's
  environment (Kubernetes Indexed Job, Slurm job array);
* `merge` — `merge_rankings`, the shards' rankings combined into one;
* `located` — what hub.locate found about a module folder, remembered by the files'
  identity so a warm ranking neither hashes nor parses every module again.
* `pool` — what a new ranking of a run folder must keep of the candidates it holds
  (`check_tuned_modules`, `warn_unselected_pool`);
* `nearcopies` — how often a module's nearest neighbours are near copies (frames of one
  object), which inflate the kNN proxy: ranking.json's "near_copies", rank's and the report's note;
* `rownotes` — what a module's load warned of that changes what its score means, kept with
  its row ("notes") and said again;
* `interrupted` — a ranking that stopped before it ended, told by the next one with what it
  kept (run.json's "rank_running");
* `reuse` — `ranking_changes`: whether a ranking `rank` wrote is the one `fit` would write
  (fit goes on from it on the same folder).

See docs/rank.md.
"""

from hubensemble.rank.embeddings import (CACHE_FORMAT, CACHE_LOCK_TIMEOUT, DATASET_CACHE_BYTES,
                                         RESIZE_POLICY, EmbedResult, cache_key, cache_path,
                                         changed_modules, default_cache_dir,
                                         default_resolution, embed, embedding_resolution,
                                         refuse_changed_modules)
from hubensemble.rank.merge import merge_rankings
from hubensemble.rank.knnfile import (KNN_FILE, knn_predictions_file, load_knn_predictions,
                                      write_knn_predictions)
from hubensemble.rank.ranking import (EXTRA_KEYS, KNN_METRICS, METRICS, ROW_KEYS, Ranking,
                                      catalogue_fingerprint, load_ranking, run_rank,
                                      score_embeddings, select, selection_rule)
from hubensemble.rank.shards import check_shard, shard_from_environment, shard_members

__all__ = [
    "CACHE_FORMAT", "CACHE_LOCK_TIMEOUT", "DATASET_CACHE_BYTES", "RESIZE_POLICY", "EmbedResult",
    "cache_key", "cache_path", "changed_modules", "default_cache_dir", "default_resolution",
    "embed", "embedding_resolution", "refuse_changed_modules", "EXTRA_KEYS", "KNN_FILE",
    "KNN_METRICS", "METRICS", "ROW_KEYS",
    "Ranking", "catalogue_fingerprint", "knn_predictions_file", "load_knn_predictions",
    "load_ranking", "merge_rankings", "run_rank", "score_embeddings", "select",
    "selection_rule", "write_knn_predictions", "check_shard", "shard_from_environment",
    "shard_members",
]
