"""Ranking by a proxy over embeddings: scores, selection and run_rank (the record it writes,
ranking.json: `rank.record`)."""

from __future__ import annotations

import collections
import functools
import gc
import hashlib
import inspect
import json
import logging
import math
import os
import time
from types import SimpleNamespace
from typing import Callable, ParamSpec, TypeVar, cast

import numpy as np

from hubensemble import options, proxies
from hubensemble.catalogue_pins import pin_disowned
from hubensemble.errors import (HubensembleError, ModuleLoadError, RunError, check_keywords_known,
                                first_line, reraise_stop)
from hubensemble.fileio import check_dir_target
from hubensemble.lockwords import option_word
from hubensemble.memoryroom import PeakMeter
from hubensemble.samemodule import (duplicate_reason, pins_differ, same_files_as,
                                    same_module_pairs)
from hubensemble.knnchance import knn_chance
from hubensemble.rank.embeddings import (_Datasets, _embed, _profile, default_resolution,
                                         fetched_path)
from hubensemble.rank.knnfile import (loo_neighbours, neighbour_votes,
                                      write_knn_predictions)
from hubensemble.rank.record import (EXTRA_KEYS, ROW_KEYS, Ranking, _named,  # noqa: F401
                                     load_ranking, not_ranked_warning, rule_text)
from hubensemble.rank.pool import (DESCRIPTIVE_FIELDS, check_pool_profile, check_tuned_modules,
                                   warn_unselected_pool)
from hubensemble.rank import nearcopies
from hubensemble.rank.interrupted import begin as begin_ranking, end as end_ranking, kept_words
from hubensemble.rank.rownotes import module_notes
from hubensemble.rank.rundefaults import keeps_run_defaults
from hubensemble.rank.shards import check_shard, check_shard_size, shard_members
from hubensemble.rank.twins import row_signature, same_embeddings_as, signature, trains
from hubensemble.runwriter import writes_run
from hubensemble.sweepwords import selection_command
from hubensemble.terminal import counting_note, progress_bar, say, shows_progress
from hubensemble.text import counted, escaped
from hubensemble.threads import old_objects_frozen
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)

#: {(name, reason)} of the modules the command line said before TensorFlow's import as
#: unloadable here (`say_missing`): the ranking records each as failed, its reason the same,
#: without saying it a second time (once said, taken out).
_SAID_BEFORE: set = set()

#: Proxies a module can be ranked by; the two kNN ones also give per-example predictions.
METRICS = options.get("metric").choices
KNN_METRICS = {"knn": "euclidean", "knn-cosine": "cosine"}


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------

def score_embeddings(emb, labels, *, metric, k=1, num_classes=None, groups=None):
    """(score, leave-one-out kNN predictions or None) of embeddings float [N, d] with labels
    int [N] under a proxy.

    "knn" / "knn-cosine": leave-one-out k-NN accuracy in [0, 1] (Euclidean / cosine) with the
    tie rules of proxies.loo_knn_predict, and its int64 [N] predictions; with `groups` (int
    [N], `Task.train_groups`: exact duplicates share a group) an example's whole group is
    left out, so a copy of it never votes. "logme", "hscore": the proxy's value (higher is
    better) and None. Raises HubensembleError for an unknown metric.
    """
    if metric in KNN_METRICS:
        pred = proxies.loo_knn_predict(emb, labels, k=int(k), metric=KNN_METRICS[metric],
                                       num_classes=num_classes, groups=groups)
        return float(np.mean(pred == np.asarray(labels))), pred
    if metric == "logme":
        return proxies.logme(emb, labels, num_classes=num_classes), None
    if metric == "hscore":
        return proxies.hscore(emb, labels, num_classes=num_classes), None
    raise HubensembleError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


# ---------------------------------------------------------------------------------------------
# Selection (pure policy over the rows)
# ---------------------------------------------------------------------------------------------

def selection_rule(*, metric, top_k=15, threshold=None, max_k=15, greedy=False) -> dict:
    """The selection as a record: {"rule": "top_k"|"threshold"|"greedy", parameters}."""
    if greedy and threshold is not None:
        raise HubensembleError("choose one selection rule: "
                               f"{option_word('--greedy', 'greedy=True')} or "
                               f"{option_word('--threshold', 'threshold')}, not both")
    if greedy:
        if metric not in KNN_METRICS:
            raise HubensembleError("the greedy selection combines kNN predictions; it needs "
                                   + option_word("--metric knn or knn-cosine",
                                                 "metric='knn' or 'knn-cosine'")
                                   + f", not {metric}")
        return {"rule": "greedy", "max_k": _at_least_1(max_k, "max_k")}
    if threshold is not None:
        if not (isinstance(threshold, (int, float)) and threshold >= 0):
            raise HubensembleError(f"threshold must be a number >= 0 (e.g. 0.02 for 2 %), got "
                                   f"{threshold!r}")
        return {"rule": "threshold", "threshold": float(threshold),
                "max_k": _at_least_1(max_k, "max_k")}
    return {"rule": "top_k", "top_k": _at_least_1(top_k, "top_k")}


def _at_least_1(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HubensembleError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def select(rows, selection, *, predictions=None, labels=None) -> list[str]:
    """Names chosen by `selection` (from `selection_rule`) among the ok rows."""
    scores = {r["name"]: r["score"] for r in rows if r["status"] == "ok"}
    if not scores:
        return []
    if selection["rule"] == "top_k":
        return proxies.select_top_k(scores, selection["top_k"])
    if selection["rule"] == "threshold":
        return proxies.select_threshold(scores, selection["threshold"], selection["max_k"])
    missing = sorted(set(scores) - set(predictions or {}))
    if missing or labels is None:
        raise RunError(f"the greedy selection needs the kNN predictions of every module "
                       f"(missing: {missing[:5]}) and the training labels; rank again")
    return proxies.select_greedy_knn({n: predictions[n] for n in scores}, labels,
                                     k_max=selection["max_k"])


def _sort_rows(rows):
    def key(row):
        ok = row["status"] == "ok"
        return (0 if ok else 1, -row["score"] if ok else 0.0, row["name"])
    return sorted(rows, key=key)


def repeated(names) -> list[str]:
    """The names that occur more than once, sorted (linear time: catalogues of thousands)."""
    counts = collections.Counter(names)
    return sorted(n for n, c in counts.items() if c > 1)


def catalogue_fingerprint(specs) -> str:
    """sha256 of the catalogue's (name, handle) list in order: the shards must share it."""
    listed = [[s.name, s.handle] for s in specs]
    return hashlib.sha256(json.dumps(listed).encode("utf-8")).hexdigest()


def catalogue_entries_fingerprint(specs) -> str:
    """sha256 (hex) of every entry's fields that change what its module computes (all but
    DESCRIPTIVE_FIELDS; those `catalogue_record`'s "entries" digest), by name, leaving out
    a field at its ModuleSpec default, so that a field a later version adds (at its default)
    changes no run's record. fit records it beside `catalogue_fingerprint` (run.json's
    fit.fingerprints["entries"]), so that an entry edited in place (same name and handle,
    another value_range or input_size) is refused as a changed catalogue; the (name, handle)
    fingerprint alone let fit reuse every stage of the old entry (a new-user check). A
    description or license edit keeps it."""
    listed = {s.name: computed_fields(s.to_json()) for s in specs}
    return hashlib.sha256(json.dumps(listed, sort_keys=True).encode("utf-8")).hexdigest()


def computed_fields(entry: dict) -> dict:
    """The fields of `entry` (a `ModuleSpec.to_json()` dict, or run.json's record of one)
    that change what its module computes, less those at their ModuleSpec default:
    `rank.pool.computed_fields`, the rule's one home (no width)."""
    from hubensemble.rank.pool import computed_fields as fields

    return fields(entry)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def catalogue_record(specs) -> dict:
    """ranking.json's "catalogue" of `specs` (ModuleSpec, the whole catalogue, not a
    shard's part): "size", "fingerprint" (`catalogue_fingerprint`), "entries" ({name: digest
    of the entry's fields that change what it computes: all but DESCRIPTIVE_FIELDS}) and
    "fields" ({such field: digest of its values over the catalogue}). Shards record the
    whole catalogue's, so `rank merge` can name the module and field where theirs differ."""
    entries = [{f: v for f, v in s.to_json().items() if f not in DESCRIPTIVE_FIELDS}
               for s in specs]
    fields = sorted({f for e in entries for f in e} - {"name"})
    return {"size": len(specs), "fingerprint": catalogue_fingerprint(specs),
            "entries": {e["name"]: _digest(e) for e in entries},
            "fields": {f: _digest([e.get(f) for e in entries]) for f in fields}}


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------

def _raise_full_disk(exc: Exception) -> None:
    """Raises the OSError of a write that found no room behind `exc` (a module's download
    into a full disk or quota: `hub.resolvers.full_disk`), so that the command stops with
    the way on (exits.WAY_ON) and the module is ranked once space is freed; it was recorded
    as the module's failure ("[archive] … not a valid SavedModel tarball", "[network] …
    check the URL") and the ranking went on to meet the same disk module after module."""
    from hubensemble.hub.resolvers import full_disk

    disk = full_disk(exc)
    if disk is exc:
        raise exc
    if disk is not None:
        raise disk from exc


def _failure_reason(exc, spec=None, batch_size=None):
    """(reason, stage) of a module's failure `exc`; memory that ran out as it loaded or
    embedded (`memory.ran_out`: oneDNN's "could not create a primitive" too) is stage
    "memory", with the way on (a smaller batch, more memory), not the entry's fault: it was
    a bad catalogue entry ("fix these catalogue entries (handle, sha256, …)")."""
    from hubensemble.memory import ran_out

    if spec is not None and ran_out(exc):
        smaller = (f"pass a smaller {option_word('--batch-size', 'batch_size')} (it is "
                   f"{batch_size}: {max(1, batch_size // 2)} holds half the images), or "
                   if batch_size and batch_size > 1 else "")
        cause = exc.__cause__ if isinstance(exc, ModuleLoadError) and exc.__cause__ else exc
        return str(ModuleLoadError(
            f"ran out of memory as it loaded or embedded ({type(cause).__name__}: "
            f"{first_line(cause)}): {smaller}free memory (other programs, other runs) or use "
            "a machine with more, then rank it again (docs/reliability.md \"Small machines\")",
            module=spec.name, handle=spec.handle, stage="memory")), "memory"
    if isinstance(exc, ModuleLoadError):
        return str(exc), exc.stage
    return f"{type(exc).__name__}: {first_line(exc)}", "error"


def _duplicate(spec, earlier, why, failed=None, *, files=True) -> ModuleLoadError:
    """The row's failure (stage "duplicate", `samemodule.duplicate_reason`) of an entry loading
    an earlier one's module read alike; `failed`: that one's row when it failed, else None.
    `files` False: matched by equal embeddings (other files, each loaded under its own pin),
    so their sha256 pins are not compared (`samemodule.pins_note`): both were checked."""
    return ModuleLoadError(duplicate_reason(earlier, why, failed and failed["reason"],
                                            spec if files else None, listed=spec.source),
                           module=spec.name, handle=spec.handle, stage="duplicate")


def _base_row(index, spec):
    return {"name": spec.name, "handle": spec.handle, "status": "failed", "reason": None,
            "score": None, "dim": None, "examples": None, "seconds": None, "cache_hit": None,
            "stage": None, "family": spec.family, "architecture": spec.architecture,
            "resolution": None, "value_range": spec.value_range, "fingerprint": None,
            "index": index, "source": spec.source or None, "notes": []}


def _check_entry_dim(spec, row):
    """Warns (terminal and log.txt, naming the `output_dim:` line) when `spec`'s output_dim
    is not the width its embeddings measure (`row["dim"]`), and records the entry's in the
    row (`catalogue_dim`): a wrong one was never checked, only keras: applications'
    (handles.source_problems). The module is ranked all the same, with the measured width:
    every stage reads the width from the module (the head, the ensemble), none from the
    entry, which only describes it (catalogue list, reports), so the fix is in the entry,
    not a reason to drop a working module."""
    if spec.output_dim is None or spec.output_dim == row["dim"]:
        return
    row["catalogue_dim"] = spec.output_dim
    log.warning("%s: field 'output_dim': module %s's entry says %d, its embeddings are %d-d; "
                "ranked (and used) with the measured %d; write output_dim: %d in the entry "
                "or leave it out", spec.field_source("output_dim") or "catalogue", spec.name,
                spec.output_dim, row["dim"], row["dim"], row["dim"])


_RANK = options.defaults_for("rank")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_rule_given(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorates `run_rank` with what a call is refused for before its run folder is looked
    at (`runwriter.writes_run`: "holds files or folders (cat, dog) and no run"), in this
    order: a keyword it does not take (`errors.check_keywords_known`: the mistyped keyword
    was told after a rule clash it also held); OptionError "choose one selection rule:
    top_k=5 or threshold=0.1, not both; leave the other out" when the caller passed more
    than one of the selection rules (the options table's `exclusive` "selection": top_k,
    threshold, greedy; None and False count as not given, as fit's check counts them),
    each checked by its own rule first (`options.check`): run_rank(top_k=5, threshold=0.1)
    selected by the threshold alone, where fit and the command line refuse both; DataError
    when `out_dir` is the image folder of the task's data (`data_args`' spec, else the
    Task's own: `load_task("folder:imgs")`) or inside it (`data.specs.check_outside_data`),
    as `rank --out` is: run_rank(out_dir=<the data folder>) was told that it held files no
    run wrote, and a folder inside the data was ranked into, a class of the data from then
    on."""
    rules = [o.kw for o in options.options_for(used_by="rank") if o.exclusive == "selection"]
    signature = inspect.signature(function)

    @functools.wraps(function)
    def call(*args, **keywords):
        check_keywords_known(function, signature, keywords, args)
        given = {n: keywords[n] for n in rules  # `is`: threshold=0.0 == False is a rule
                 if keywords.get(n) is not None and keywords.get(n) is not False}
        if len(given) > 1:
            for name, value in given.items():  # each its own rule first: top_k=0 is no rule
                options.check(name, value, command="rank")
            rivals = " or ".join(f"{n}={v!r}" for n, v in given.items())
            raise options.OptionError(
                f"choose one selection rule: {rivals}, not " + (
                    "both; leave the other out" if len(given) == 2 else
                    "more than one; leave the others out"))
        bound = signature.bind_partial(*args, **keywords).arguments
        out_dir, data_args = bound.get("out_dir"), bound.get("data_args")
        spec = getattr(data_args, "spec", None) or getattr(bound.get("task"), "spec", None)
        if isinstance(out_dir, (str, os.PathLike)) and isinstance(spec, str):
            from hubensemble.data.specs import check_outside_data

            whose = "data_args' data" if getattr(data_args, "spec", None) else "the task's data"
            check_outside_data(spec, {"out_dir": out_dir}, whose=f"{whose}, {spec}")
        return function(*args, **keywords)

    return cast(Callable[_P, _R], call)  # run_rank's own signature (functools.wraps)


@_one_rule_given
@shows_progress
@writes_run("rank", "out_dir", create=True)
@keeps_run_defaults
@with_stage_settings
def run_rank(out_dir, specs, task, *, metric=_RANK["metric"], k=_RANK["k"],
             top_k=_RANK["top_k"], threshold=_RANK["threshold"], max_k=_RANK["max_k"],
             greedy=_RANK["greedy"], shard=_RANK["shard"], batch_size=_RANK["batch_size"],
             profile=_RANK["profile"], cache_dir=_RANK["cache_dir"],
             use_cache=_RANK["use_cache"], data_args=None, progress=True) -> Ranking:
    """Ranks `specs` on `task`'s training split and writes ranking.json/.csv into the run
    folder `out_dir` (keyword defaults: hubensemble.options, the "rank" options; in a run
    folder, the options not passed are the run's, as `rank --out RUN` keeps them:
    `rank.rundefaults.keeps_run_defaults`).

    Every module is embedded and scored one at a time (only one is in memory at once; its
    row keeps the peak memory its embedding took, "memory": `memoryroom.PeakMeter.record`,
    None on a cache hit, which later stages' rules read: `memory.measured_factors`); a
    module that fails is recorded with status "failed", its reason and stage, and the
    ranking goes on. With `shard=(i, n)` only the modules whose catalogue index % n == i
    are ranked (merge the shards with `merge_rankings`). Selection: the `top_k` best, or
    with `threshold` those within that relative distance of the best (at most `max_k`), or
    with `greedy` the paper's C.6 greedy kNN-ensemble selection (at most `max_k`).

    `data_args` (rundir.DataArgs) records how to load the task again, so later stages can
    run in another process; without it the run records DataArgs.of_task(task) (its
    spec, not reloadable): later stages then need the task passed in Python.
    Raises HubensembleError summarising every failure when no module succeeded (a shard
    writes its ranking all the same, with a warning: `merge_rankings` applies the rule over
    all shards); RunError,
    before any work, when `out_dir` holds files no stage wrote and no run
    (`Run.check_folder_is_ours`) or is a file, a run on other data, or candidates tuned from a
    module that this ranking drops or whose entry it changes (`check_tuned_modules`) or with
    another profile (`check_pool_profile`: `hubensemble rank` without --profile takes the
    run's, `tune.stage.run_profile`); DataError
    when `out_dir` is the image folder of `data_args`' spec (else the Task's) or inside it
    (`data.specs.check_outside_data`, before any other check but the keywords and rules);
    OptionError for a value the command line refuses (`options.check_keywords`: cache_dir
    "" fell back to the default cache). `specs` may also be what fit's `catalogue` takes
    (catalogue YAML paths). TypeError, before anything, for an `out_dir`, `specs` or `task`
    of another type (`stageargs`: task=123 failed with "'int' object has no attribute
    'train'"); DataError for a Task the method cannot use (`validate_task`).
    """
    from hubensemble import stageargs
    from hubensemble.data import validate_task
    from hubensemble.hub.notices import captured

    # The options table's rules, as the command line's; profile may be a Profile here, and
    # top_k None beside a threshold or greedy (selection_rule checks both).
    options.check_keywords("rank", dict(
        metric=metric, k=k, top_k=top_k, threshold=threshold, max_k=max_k, greedy=greedy,
        shard=shard, batch_size=batch_size, profile=profile, cache_dir=cache_dir,
        use_cache=use_cache), own=("profile",) * (not isinstance(profile, str))
        + ("top_k",) * (top_k is None))
    out_dir = stageargs.folder("run_rank", "out_dir", out_dir)  # the others, as fit's
    stageargs.task("run_rank", task)
    specs = stageargs.catalogue_specs(specs, "run_rank", "specs")
    # As fit checks a Task: a bad one failed per module ("Binding inputs to tf.function
    # failed"), blamed on the catalogue. A Task is taken as its maker loaded it.
    validate_task(task, min_per_class=data_args.min_per_class if data_args else 0)
    from hubensemble.memory import data_note

    # The images held, which the note before the data was read could not count.
    note = data_note(task, specs, batch_size, profile)
    if note:
        log.warning("%s", note)
    from hubensemble.rundir import DataArgs, Run

    if metric not in METRICS:
        raise HubensembleError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    selection = selection_rule(metric=metric, top_k=top_k, threshold=threshold, max_k=max_k,
                               greedy=greedy)
    k = _at_least_1(k, "k")
    n_train = len(task.train)
    if metric in KNN_METRICS and k > n_train - 1:
        raise HubensembleError(f"leave-one-out {k}-NN needs at least {k + 1} training "
                               f"examples; the task has {n_train}: lower "
                               f"{option_word('--k', 'k')}")
    if metric in KNN_METRICS:
        _warn_outvoted(task, k)
    shard = check_shard(shard)
    prof = _profile(profile)
    dupes = repeated(s.name for s in specs)
    if dupes:
        raise HubensembleError(f"module names must be unique; repeated: {dupes}")
    check_shard_size(specs, shard)
    chosen = shard_members(len(specs), shard)
    # Remote entries differing only in a written-out default: compared on the fetched copy.
    # Two pins that differ: at most one entry loads (each is checked), so neither is the
    # other's duplicate; a correct later pin was lost behind a wrong earlier one.
    # One pin under two handles that its bytes show are not one module (a copied entry
    # whose pin is the other's: `catalogue_pins.pin_disowned`): each is checked, no duplicate.
    same = {id(later): (earlier, why) for later, earlier, why in same_module_pairs(
        specs, fetched=fetched_path, disowned=pin_disowned) if not pins_differ(later, earlier)}

    # (out_dir inside the task's image folder: refused by `_one_rule_given`, before all this)
    Run(out_dir).check_folder_is_ours("out_dir")  # the command line checks these too, earlier
    check_dir_target(out_dir, "pass another out_dir")
    held = check_tuned_modules(out_dir, {specs[i].name: specs[i].to_json() for i in chosen})
    check_pool_profile(out_dir, prof)  # one pool, one profile (its embedding resolution)
    run = Run(out_dir)
    if data_args is None:
        data_args = DataArgs.of_task(task)
    run.attach_task(task, data_args)  # other data is refused: before the warning below
    if held and run.fit_here():  # fit's own rank stage: its pool, which its tune goes on with
        log.info("rank: %s holds %s of this fit's earlier tune; its tune stage goes on from "
                 "%s, adding trials for the modules this ranking selects", escaped(out_dir),
                 counted(held, "candidate"), "it" if held == 1 else "them")
    elif held:
        # The run's own sweep and options (a plain `tune` resumed a probe sweep's recorded
        # budget and modules), and fit's own ranking, which a next fit puts back.
        refit = (f" (the next {option_word('`fit`', 'hubensemble.fit()')} ranks again with its own "
                 "options, in place of this ranking)" if "fit" in run.meta() else "")
        log.warning("%s holds %s from an earlier tune; %s in the pool that the ensemble "
                    "selects from, and %s adds trials for the modules this ranking selects%s",
                    escaped(out_dir), counted(held, "candidate"),
                    "it stays" if held == 1 else "they stay", selection_command(out_dir),
                    refit)
    stopped = begin_ranking(run, len(chosen))  # a ranking before it that stopped, if any
    labels = np.asarray(task.train.labels, np.int64)
    groups = _duplicate_groups(task, metric, k)
    datasets = _Datasets(task, batch_size)
    rows, predictions, neighbours, ranked, signed = [], {}, {}, [], []
    bar = progress_bar(total=len(chosen), desc="rank", unit="module", shown=progress)
    with old_objects_frozen():
        for i in chosen:  # the bar counts by update: a note (bar_note) shows a current count
            reraise_stop()  # a stop whose exception Python ignored: no next module
            spec = specs[i]
            row = _base_row(i, spec)
            start = time.perf_counter()
            bar.set_postfix_str(spec.name)
            try:
                if id(spec) in same:  # the whole catalogue's pairs: every shard decides alike
                    earlier, why = same[id(spec)]
                    raise _duplicate(spec, earlier, why, next(
                        (r for r in rows if r["name"] == earlier.name
                         and r["status"] == "failed"), None))
                # its peak: later stages' memory rules take it; its load-time warnings (or
                # those its cache entry kept) change what its score means: kept as notes
                with PeakMeter() as meter, captured() as said:
                    res = _embed(spec, task, "train", profile=prof, cache_dir=cache_dir,
                                 use_cache=use_cache, datasets=datasets,
                                 on_batch=counting_note(bar, spec.name, "images"))
                row["notes"] = module_notes(said, spec.name)
                row.update(resolution=list(res.resolution), fingerprint=res.fingerprint,
                           cache_hit=res.cache_hit, dim=int(res.embeddings.shape[1]),
                           examples=int(res.embeddings.shape[0]),
                           memory=None if res.cache_hit else meter.record(
                               datasets.batch_size, res.resolution))
                if metric in KNN_METRICS:  # how far near copies carry the score (a note); a
                    # duplicate's row too, as `rank merge` keeps it from its shard's ok row
                    row["near_copies"] = nearcopies.near_copies(
                        res.embeddings, labels, k=k, metric=KNN_METRICS[metric], groups=groups)
                if twin := same_files_as(spec, res.fingerprint, ranked):  # in this shard
                    raise _duplicate(spec, *twin)
                # Other files, one module (m.keras and its SavedModel): equal embeddings.
                sig = signature(res.embeddings)
                if twin := same_embeddings_as(spec, sig, row["dim"], signed, trains):
                    raise _duplicate(spec, *twin, files=False)
                _check_entry_dim(spec, row)
                # kNN: the 10 nearest (labelcheck's) once, the k-NN predictions from them
                near = (loo_neighbours(res.embeddings, metric=KNN_METRICS[metric],
                                       groups=groups) if metric in KNN_METRICS else None)
                if near is not None and k <= near.shape[1]:
                    pred = neighbour_votes(near, labels, k)
                    score = float(np.mean(pred == labels))
                else:  # other metrics, a k above 10, or too few images to keep 10
                    score, pred = score_embeddings(res.embeddings, labels, metric=metric,
                                                   k=k, groups=groups,
                                                   num_classes=task.num_classes)
                del res
                if not math.isfinite(score):
                    raise ModuleLoadError(f"the {metric} score is {score}", module=spec.name,
                                          handle=spec.handle, stage="score")
                row.update(status="ok", score=float(score), signature=row_signature(sig))
                ranked.append((spec, row["fingerprint"]))
                signed.append((spec, row["dim"], sig))
                if pred is not None:
                    predictions[spec.name] = pred  # written once, with the ranking
                    if near is not None:
                        neighbours[spec.name] = near
            except Exception as e:  # noqa: BLE001 - one broken module must not stop the ranking
                reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
                _raise_full_disk(e)  # the disk's: every later module would meet it too
                row["reason"], row["stage"] = _failure_reason(e, spec, batch_size)
                row["source"] = spec.fault_source(row["stage"]) or None  # validate's line
                row["status"] = "failed"
                if (spec.name, row["reason"]) in _SAID_BEFORE:  # before TensorFlow: said
                    _SAID_BEFORE.discard((spec.name, row["reason"]))
                else:
                    log.warning("%s", not_ranked_warning(row, _named(row)))
            if not row["cache_hit"]:
                gc.collect()  # the module may have been loaded: free its cycles before the next
            row["seconds"] = round(time.perf_counter() - start, 4)
            rows.append(row)
            bar.set_postfix_str("", refresh=False)  # the module's note goes as it ends (tune's)
            bar.update(1)
    bar.close()
    if stopped is not None:  # once, with what this one kept of it (it said nothing)
        say(SimpleNamespace(quiet=not progress), kept_words(stopped, rows, out_dir,
                                                            use_cache=use_cache))
    if shard is None:
        if not any(r["status"] == "ok" for r in rows):
            run.modify(end_ranking)  # it ends with its refusal: not one that stopped
        raise_if_none_ok(rows)
    elif not any(r["status"] == "ok" for r in rows):
        # A shard is part of a ranking: it writes its failures (exit 0), and the merge applies
        # the rule over all shards. Raising here left no ranking.json: no merge could complete.
        log.warning("no module of shard %d/%d could be ranked (%d failed); its ranking "
                    "records why, and `rank merge` refuses only when no module of any shard "
                    "could be ranked", shard[0], shard[1], len(rows))

    default_hw = default_resolution(task, prof)
    ranking = Ranking(
        metric=metric, k=k, rows=_sort_rows(rows), selected=[], selection=selection,
        shard=shard, data_fingerprint=task.fingerprint, profile=prof.name,
        profile_definition=prof.to_json(),
        resolution=default_hw, examples=n_train,
        catalogue=catalogue_record(specs),
        chance=knn_chance(labels) if metric in KNN_METRICS else None)
    ranking.selected = select(ranking.rows, selection, predictions=predictions, labels=labels)
    # The predictions first: ranking.json, written last, is what says the ranking is done.
    write_knn_predictions(out_dir, {r["name"]: predictions[r["name"]]
                                    for r in ranking.ok_rows if r["name"] in predictions},
                          neighbours)
    ranking.write(out_dir)

    def result(meta):  # its record, and no ranking running any more
        meta.update(modules={specs[i].name: specs[i].to_json() for i in chosen},
                    rank=_rank_section(ranking, batch_size=batch_size, use_cache=use_cache))
        end_ranking(meta)

    run.modify(result)
    if held and shard is None:  # a shard's selection is not the run's: the merge warns
        warn_unselected_pool(out_dir, ranking.selected)
    from hubensemble.refresh import refresh_report

    refresh_report(out_dir, "the new ranking")
    return ranking


def _warn_outvoted(task, k):
    """Warns when --k reaches twice the same-class neighbours a class can offer
    (`proxies.outvoted_classes`): the ranking is then by class sizes more than features."""
    # A class of one example is a miss at any k (validate_task's min_per_class says so).
    low = [(c, n) for c, n in proxies.outvoted_classes(task.train.labels, k) if n > 1]
    if not low:
        return
    c, n = low[0]
    sizes = f"{n}" if low[-1][1] == n else f"{n} to {low[-1][1]}"
    more = (f" (and {counted(len(low) - 1, 'more class', 'more classes')} of {sizes})"
            if len(low) > 1 else "")
    log.warning("%s: class %r has %s%s, so each of its examples has at "
                "most %s among its %d, at most half: outvoted "
                "whenever the others agree, the kNN proxy scores class sizes more than the "
                "embeddings; lower it to %s or less, or keep the default 1", option_word(
                    f"--k {k}", f"k={k}"), task.class_names[c],
                counted(n, "training example"), more, counted(n - 1, "same-class neighbour"),
                k, 2 * (n - 1) - 1)


def _duplicate_groups(task, metric, k):
    """The training examples' duplicate groups for leave-one-out kNN, or None when every
    training image is distinct (the plain, faster leave-one-out). Checked once here: a group
    so large that some example has fewer than k others outside it fails the ranking up front
    with the reason, not every module one by one."""
    if metric not in KNN_METRICS:
        return None
    groups = np.asarray(getattr(task, "train_groups", np.arange(len(task.train))))
    if len(np.unique(groups)) == len(groups):
        return None
    try:
        proxies.check_groups(groups, len(groups), k)
    except HubensembleError as e:
        raise HubensembleError(f"{e}; lower {option_word('--k', 'k')}, or load the data "
                               + option_word("with --dedupe", "with load_task(…, dedupe=True)")
                               ) from None
    log.info("leave-one-out kNN leaves out whole duplicate groups (%d training examples "
             "have an exact copy)", len(groups) - len(np.unique(groups)))
    return groups


def _rank_section(ranking, **extra):
    section = {"metric": ranking.metric, "k": ranking.k, "selection": ranking.selection,
               "profile": ranking.profile,
               "shard": list(ranking.shard) if ranking.shard else None,
               "resolution": list(ranking.resolution) if ranking.resolution else None,
               # Not the entries' digests (ranking.json has them): run.json stays small.
               "catalogue": {k: ranking.catalogue.get(k) for k in ("size", "fingerprint")},
               "selected": list(ranking.selected),
               "ok": len(ranking.ok_rows), "failed": len(ranking.failed_rows)}
    section.update(extra)
    return section


def missing_rows(specs, shard=None) -> list[dict]:
    """The rows (ranking.json's, status "failed", stage "local path") of the entries of
    `specs` (ModuleSpec) that `shard` ((i, n) or None: all) ranks whose handle is a local
    path with nothing there (`catalogue_here.missing_here`), their reasons those the loader
    gives them; no TensorFlow, no network. `rank` and `fit` read them before TensorFlow's
    import (`commands._missing_modules`): `raise_if_none_ok` refuses a catalogue of none
    else, `say_missing` says them."""
    from hubensemble.catalogue_here import missing_here

    index = {id(spec): i for i, spec in enumerate(specs)}
    chosen = [specs[i] for i in shard_members(len(specs), shard)]
    rows = []
    for spec, error in missing_here(chosen):
        row = _base_row(index[id(spec)], spec)
        row.update(reason=str(error), stage=error.stage,
                   source=spec.fault_source(error.stage) or None)  # validate's line
        rows.append(row)
    return rows


def say_missing(rows) -> None:
    """Says (a warning each) the modules of `rows` (`missing_rows`) as skipped, before
    TensorFlow's import; run_rank then records each as failed without saying it again."""
    _SAID_BEFORE.clear()  # (one command line per process; tests run many)
    for row in rows:
        log.warning("module %s cannot load here, so rank skips it: %s", _named(row),
                    row["reason"])
        _SAID_BEFORE.add((row["name"], row["reason"]))


def raise_if_none_ok(rows, again="run the same command again (`rank` or `fit`)") -> None:
    """ModuleLoadError naming every module of `rows` (ranking.json's rows) and its reason,
    with the way on (the network's, memory's, else the catalogue entries to fix), when none
    of them is "ok": "no module could be ranked (N failed): …"."""
    if any(r["status"] == "ok" for r in rows):
        return
    lines = [f"  {_named(r)}: {r['reason']}" for r in rows]
    # A download that failed is the network's fault, not the entry's: offline, "fix these
    # catalogue entries" sent users to edit correct handles (a new-user check).
    fetch = sum(r.get("stage") == "network" for r in rows)
    # Memory that ran out is the machine's too (`_failure_reason`): its reasons say the way on.
    short = sum(r.get("stage") == "memory" for r in rows)
    ways = []
    if fetch:
        lead = ("none could be downloaded" if fetch == len(rows) else
                f"{fetch} could not be downloaded")
        # A fetch fails for a dead network, a refused or missing key (401/403), a mistyped
        # handle (404) or a rate limit: each reason names its own way on (hub.hosts.status_hint).
        ways.append(f"{lead}: each reason above says what to do (the network or "
                    "HTTPS_PROXY, an account's key, the handle's spelling, or the files "
                    "put in place by hand)")
    if short:
        ways.append(f"{'every module' if short == len(rows) else counted(short, 'module')} "
                    f"ran out of memory: a smaller {option_word('--batch-size', 'batch_size')}"
                    ", or more free memory (each reason above says so)")
    if fetch + short < len(rows):
        # a keras: entry's weights file is its module (a new-user check: the list left it out)
        weights = any(str(r.get("handle", "")).startswith("keras:") for r in rows)
        ways.append(f"fix {'the other' if ways else 'these'} catalogue entries (handle, "
                    f"{'weights, ' if weights else ''}sha256, trust, output_key, value_range)")
    last = (f"{ways[0]} and {again}" if not fetch + short else
            f"{'; '.join(ways)}; then {again}")
    # A ModuleLoadError: no usage error when the command line's check says it before
    # TensorFlow (`arguments.is_usage_error`), as the stage said it after.
    raise ModuleLoadError.of_lines([f"no module could be ranked ({len(rows)} failed):", *lines,
                                    last])
