"""fit(): rank -> tune -> ensemble -> export -> evaluate -> report over one run directory."""

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from hubensemble import environment
from hubensemble import options as option_table
from hubensemble.datachange import require_validation
from hubensemble.errors import RunError, reraise_stop
from hubensemble.exportfolder import folder_lock
from hubensemble.fileio import is_temp
from hubensemble.fitargs import catalogue_specs, check_data, check_paths
from hubensemble.formats import FIT_LOCK, FIT_LOCK_OWNER, RUN_ENTRIES
from hubensemble.rundir import DataArgs, Run
from hubensemble.stagerecords import (STAGE_INPUTS, candidates_digest, carried, digest,
                                      file_digest, mark, stage_done, tree_sha256)
from hubensemble.sweeplock import is_member_file, remove_free_locks
from hubensemble.terminal import shows_progress
from hubensemble.lockwords import command_words, on_command_line, option_word
from hubensemble.text import absolute, closest_name, escaped
from hubensemble import kerasenv
from hubensemble.kerasenv import with_stage_settings

if TYPE_CHECKING:  # for type checkers only: fit imports rank where it runs it
    from hubensemble.rank.ranking import Ranking

log = logging.getLogger(__name__)

STAGES = option_table.STAGES


def _options_post_init(self):
    option_table.check_record("fit", self)


def _for_stage(self, stage):
    """{option: value} of the options the result of `stage` depends on."""
    return {f: getattr(self, f) for f in self.STAGE_FIELDS[stage]}


# Every choice of a fit: one field per option of hubensemble.options whose record is "fit",
# with the table's default, in the table's order; values are checked against the table.
FitOptions = dataclasses.make_dataclass(
    "FitOptions", option_table.dataclass_fields("fit"),
    namespace={
        "__doc__": "Every choice of a fit (the options of hubensemble.options whose record is "
                   "'fit'; defaults = the paper's, except the profile, `cpu`, which a CPU "
                   "can finish). A value outside an option's type, choices or range raises "
                   "options.OptionError.\n\n"
                   "STAGE_FIELDS[stage]: the options whose change invalidates that stage (and "
                   "so every later one); derived from the table's `invalidates`.",
        "__post_init__": _options_post_init,
        "STAGE_FIELDS": option_table.stage_fields("fit"),
        "for_stage": _for_stage,
    })
FitOptions.__module__ = __name__


@dataclasses.dataclass
class FitResult:
    """What `fit` produced; every field is also on disk in the run directory. `export_path`
    and `report_paths` are absolute, as `summary`, `report` and `export` print them: as
    typed, a link kept (text.absolute, not Path.resolve). `skipped`:
    (path, reason) of each file of the data that could not be read and was left out, as
    RUN/run.json lists them (data.task.skipped)."""

    run_dir: Path
    ranking: "Ranking"         # RUN/ranking.json (rank.Ranking)
    ensemble: dict             # RUN/ensemble.json
    metrics: dict | None       # ensemble.json "test": ensemble and best single, or None;
    #                            with --retrain-full, the exported (retrained) members' own
    export_path: Path
    report_paths: tuple
    robustness: dict | None
    stage_seconds: dict
    skipped: list = dataclasses.field(default_factory=list)

    def summary(self):
        """The test-set table of best single vs ensemble, a note naming the classes without a
        test (or validation) example, stage times and paths (as printed), and a line on the
        files of the data that were skipped, with where the whole list is (the command
        line's data summary says it before the table; a Python caller sees this)."""
        from hubensemble.formats import skipped_list
        from hubensemble.report import summary_table

        text = summary_table(self.run_dir)
        if self.skipped:
            shown = "; ".join(f"{escaped(p)}: {r}" for p, r in self.skipped[:3])
            text += (f"\ndata: {len(self.skipped)} file(s) skipped, unreadable (e.g. {shown}); "
                     f"{skipped_list(absolute(self.run_dir))}")
        return text

    def __repr__(self):
        from hubensemble.report.write import result_repr
        return result_repr(self)


def _stage_keys(catalogue_fp, data_fp, options):
    """A key per stage that changes when anything the stage's result depends on changes."""
    keys, upstream = {}, digest([catalogue_fp, data_fp])
    for stage in STAGES:
        upstream = digest([upstream, stage, options.for_stage(stage)])
        keys[stage] = upstream
    return keys


def _clear_run(run):
    """--restart: remove the run's results (the embedding cache and the zoo live elsewhere):
    the entries a stage writes (formats.RUN_ENTRIES) and temp entries, nothing else. log.txt
    stays (it is being written); an entry of the user's stays, and the log names it, as does
    a labels/ or candidates/ holding files of the user's (`Run.foreign_content`). A chief/
    worker sweep's free locks go too (`sweeplock.remove_free_locks`; the caller holds the
    run's lock and saw no sweep running): they were kept as "entries no stage writes"."""
    remove_free_locks(run.path)
    kept = []
    for name in os.listdir(run.path):
        path = run.path / name
        if path == run.log or name in (FIT_LOCK, FIT_LOCK_OWNER):  # held, and its holder: us
            continue
        if is_member_file(name):  # held now: a sweep process starting, which refuses itself
            continue
        if (name not in RUN_ENTRIES and not is_temp(name)) or run.foreign_content(name):
            kept.append(name)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if kept:
        log.info("--restart kept %d entr%s that no stage writes: %s", len(kept),
                 "y" if len(kept) == 1 else "ies", ", ".join(escaped(k) for k in sorted(kept)))


@shows_progress
@with_stage_settings
def fit(catalogue, data, out, *, export=None, data_args=None, restart=False, progress=True,
        cache_dir=None, use_cache=True, options=None, **option_values) -> FitResult:
    """Runs the whole method on one data set and returns a FitResult.

    `catalogue` is one or more catalogue YAML paths or ModuleSpec records; `data` a data spec
    (see docs/data.md; `data_args` gives the other load_task options) or a `Task` already in
    memory; `out` the run directory; `export` where the SavedModel goes (default RUN/export).
    Stage options are FitOptions fields, e.g. ``profile="cpu"``, ``top_k=5``,
    ``sweep="hyper"`` (hubensemble.options lists them with their defaults and allowed values);
    `options` is a FitOptions to start from. An unknown option raises TypeError; a value
    outside an option's choices or range raises options.OptionError, before anything runs.

    Before the run folder is created (so a refused fit leaves no folder, log or lock), fit
    refuses what the command line refuses before its own, with the same checks: a
    `catalogue`, `data`, `out`, `export` or `cache_dir` of another type (TypeError), an empty
    `out`, `export` or `cache_dir` (OptionError), a catalogue file that is missing or
    malformed (CatalogueError) or lists no module, a data spec that cannot be read
    (`data.check_spec`: DataError, e.g. a missing npz file or an unknown sklearn: name), a
    --strategy the machine cannot serve, `modules` the catalogue lacks, a `budget` that
    cannot hold one group of the sweep (HubensembleError), an `export` folder in the
    way (RunError), and `out` or `export` inside a folder: spec's folder (DataError). A fit
    refused later (data only loading shows wrong, or a `strategy="tpu"` whose TPU does not
    answer: asked before rank, `strategies.check_tpu_serves`) removes the run folder it made
    (`Run.log_file`); from a folder that existed without a run's file, only its log and lock.

    Running it again resumes: finished stages are reused and a sweep continues where it
    stopped. A changed catalogue, data set, or rank/tune option is refused unless `restart`
    (which discards the old results); changed ensemble/export/evaluate options simply redo
    those stages.

    Example::

        import hubensemble
        result = hubensemble.fit(catalogue=hubensemble.shipped_catalogue("demo.yaml"),
                                 data="sklearn:digits", out="runs/digits", profile="cpu",
                                 top_k=5)
        print(result.metrics["ensemble"]["accuracy"], result.export_path)
    """
    from hubensemble.sweeps import check_budget
    from hubensemble.preflight import check_modules, check_strategy
    from hubensemble.rank import catalogue_fingerprint

    names = [f.name for f in dataclasses.fields(FitOptions)]
    unknown = sorted(set(option_values) - set(names))
    if unknown:  # with the command line's "did you mean" (topk -> top_k)
        said = [n + (f" (did you mean {closest_name(n, names)}?)" if closest_name(n, names)
                     else "") for n in unknown]
        raise TypeError(f"fit() got unknown option(s) {', '.join(said)}; the options are "
                        f"{', '.join(names)}")
    options = dataclasses.replace(options or FitOptions(), **option_values)
    # What the command line refuses before its run folder (preflight.check_inputs), by the same
    # functions: a refused fit leaves no folder, log or lock behind.
    environment.check_environment()  # HUBENSEMBLE_*_TIMEOUT / _DEADLINE seconds
    check_paths(out=out, export=export, cache_dir=cache_dir)
    specs = catalogue_specs(catalogue)
    check_strategy(options.strategy, options.tpu)
    check_modules(options.modules, [{"name": s.name} for s in specs], source="catalogue")
    check_budget(options.sweep, options.budget)
    data_args = check_data(data, data_args, out=out, export=export)
    from hubensemble.formats import EXPORT_DIR, check_export_target

    # Before the run folder (not after the sweep): the folder is fine to write and load.
    check_export_target(export or Path(out) / EXPORT_DIR, "export" if export else "out",
                        run_dir=out)
    kerasenv.check_backend()  # every fit imports Keras (even a finished run's): before the data
    run = Run(out)
    # An --export outside the run has its own lock: for the whole fit, which ends writing there.
    with run.fit_log(), folder_lock(export or run.export, run.path, "fit", "--export", "export"):
        if isinstance(data, str):
            task = data_args.load()
        else:
            # A Task from Python: later stages of this run need it passed in again.
            task = data
            data_args = data_args or DataArgs.of_task(task)
        _say_data(task, run.skipped_list_for(task, restart=restart), progress)
        if run.new_task(task, restart=restart):  # not again at each resumed fit
            from hubensemble.data.folder import warn_class_notes
            warn_class_notes(task)
        require_validation(task)  # tune and the ensemble choose on it: before rank's minutes
        fingerprints = {"catalogue": catalogue_fingerprint(specs), "data": task.fingerprint}
        keys = _stage_keys(fingerprints["catalogue"], fingerprints["data"], options)
        if restart or not stage_done(run, "tune", keys["tune"]):  # the sweep will run: before
            from hubensemble.tune.strategies import check_tpu_serves  # rank, not after it

            check_tpu_serves(options.strategy, options.tpu)
        _check_inputs(run, fingerprints, keys, options, restart=restart, specs=specs,
                      data=(task, data_args), cache_dir=cache_dir, progress=progress)
        if run.meta().get("data"):
            # The same data (checked above), loaded now: its record says what became of every
            # file this time (a file added since, unreadable or hidden, left the counts of
            # the first load in run.json and the report when rank was reused).
            run.attach_task(task, data_args, command="fit")
        run.update(fit={"catalogue": [s.source or s.name for s in specs],
                        "data": data_args.spec, "fingerprints": fingerprints,
                        "options": dataclasses.asdict(options), "keys": keys})
        return _run_stages(run, specs, task, data_args, options, keys, export=export,
                           progress=progress, cache_dir=cache_dir, use_cache=use_cache)


def _say_data(task, skipped_in, progress) -> None:
    """The data's summary (`Task.summary`), for Python and the command line alike: said on
    stderr with `progress` (the command line's note, unless -q) and in RUN/log.txt; a
    WARNING when files were skipped as unreadable, which a notebook shows (Python's fit
    logged them at INFO: a notebook user never saw them; FitResult.skipped lists them)."""
    from hubensemble.terminal import PRINTED, say

    text = task.summary(skipped_in=skipped_in)
    if task.skipped:
        log.warning("%s", text)
    else:  # logged as fit's other lines: `say` logs as the command line's (hubensemble.cli)
        log.info("%s", text, extra={PRINTED: True})
        say(SimpleNamespace(quiet=not progress), text, logged=False)


def _changed_module_files(run, specs, cache_dir) -> list[str]:
    """["files of module(s) A, B"] when modules ranked in `run` changed in place since (their
    content fingerprint is not ranking.json's), else []. The catalogue's entries alone were
    the key: a module's variables replaced between an interrupt and the resume gave a sweep
    of two versions of one module, silently (a new-user check)."""
    from hubensemble.rank import changed_modules, load_ranking

    if not run.ranking_json.exists():
        return []
    try:
        rows = load_ranking(run.path).ok_rows
    except (RunError, OSError, ValueError):
        return []  # a damaged ranking.json is redone by the rank stage
    names = changed_modules({r["name"]: r.get("fingerprint") for r in rows}, specs, cache_dir)
    return [f"files of module{'s' if len(names) > 1 else ''} {', '.join(names)}"] if names else []


def _changed_options(previous: dict, options) -> list[str]:
    """'--flag old -> new' for each rank or tune option whose value differs from the one the
    run was fitted with (`previous`: run.json's fit.options, JSON values), in the words the
    user types and the data refusal uses: field names and None ("budget: None -> 8") were
    not what to pass to resume (a new-user check). From Python (`lockwords.on_command_line`
    false) fit's keywords: "top_k=1 -> 2"."""
    from hubensemble.datachange import shown

    now = json.loads(json.dumps(dataclasses.asdict(options), default=str))
    names = [*options.STAGE_FIELDS["rank"], *options.STAGE_FIELDS["tune"]]
    changed = [n for n in dict.fromkeys(names) if n in previous and previous[n] != now.get(n)]
    if not on_command_line():  # fit's keywords, Python values: "budget=None -> 8"
        return [f"{n}={previous[n]!r} -> {now.get(n)!r}" for n in changed]
    return [f"{option_table.get(n).cli_flags[0]} {shown(previous[n])} -> {shown(now[n])}"
            for n in changed]


def _older_run(run, meta: dict, options) -> str:
    """The refusal of a run whose rank and tune key (run.json's fit.keys.tune) differs though
    every option it records has the value typed now: an older hubensemble wrote it, keying
    the stages by fewer options (those added since are not in its fit.options) or otherwise.
    Its results cannot be matched to this version's options, so they are not reused; the
    message names run.json, when and by which version it was written, the options it lacks
    and the way on. It said "the rank or tune options changed", naming none, to a user who had
    typed the same command (checked on a run of 679fffb: it records no --batchnorm,
    --head-init)."""
    recorded = (meta.get("fit") or {}).get("options") or {}
    names = [*options.STAGE_FIELDS["rank"], *options.STAGE_FIELDS["tune"]]
    missing = [option_word(option_table.get(n).cli_flags[0], n) for n in dict.fromkeys(names)
               if n not in recorded]
    version = (meta.get("versions") or {}).get("hubensemble")
    written = ", ".join(str(v) for v in (f"hubensemble {version}" if version else None,
                                         meta.get("created")) if v)
    lacks = (f"it records no {', '.join(missing)}, options added since" if missing else
             "its rank and tune results are keyed otherwise")
    return (f"{run.meta_path} was written by an older hubensemble ({written or 'unknown'}): "
            f"{lacks}, so this version cannot tell whether they are what this fit would "
            f"make; {_new_or_restart('to discard the old results')}")


def _catalogue_change(run, specs) -> str:
    """"catalogue (the entries that differ)" from ranking.json's record of the catalogue
    (`rank.reuse.catalogue_changes`), or "catalogue" when there is no readable ranking."""
    from hubensemble.rank import load_ranking
    from hubensemble.rank.reuse import catalogue_changes

    try:
        changed = catalogue_changes(load_ranking(run.path), specs)
    except (RunError, OSError, ValueError):
        changed = None
    return f"catalogue ({changed})" if changed else "catalogue"


def _data_change(recorded: dict, task, data_args, run=None) -> str:
    """"data (what differs)" between run.json's data record (and `run`'s labels and pixel
    keys, when given) and the data loaded now (`datachange.compare`): the load's options
    ("--data-seed 0 -> 1"), else the classes, the counts of files read and of each split,
    else the labels or pixels that differ (a new-user check: a new --data-seed and one photo
    added both said only "the data changed")."""
    from hubensemble.datachange import DataRecord, compare

    was = (DataRecord.of_run(run, recorded) if run is not None else
           DataRecord(args=recorded.get("args") or {}, task=recorded.get("task") or {},
                      labels={}, keys=None))
    return f"data ({'; '.join(compare(was, DataRecord.of_task(task, data_args)).items())})"


def _check_inputs(run, fingerprints, keys, options, *, restart, specs=(), cache_dir=None,
                  data=(None, None), progress=False):
    if restart:
        # Before run.json is read: --restart is the way out of a damaged one (Run.meta says so).
        if run.holds_results():
            log.info("--restart: clearing %s", escaped(run.path))
            _clear_run(run)
        return
    meta = run.meta()
    previous = meta.get("fit") or {}
    if not previous:
        if run.ranking_json.exists() or run.candidates.exists():
            _go_on_from_rank(run, fingerprints, keys, options, specs=specs, cache_dir=cache_dir,
                             progress=progress)
        return
    changed = [what for what in ("catalogue", "data")
               if previous.get("fingerprints", {}).get(what) != fingerprints[what]]
    if "data" in changed and data[0] is not None:
        changed[changed.index("data")] = _data_change(meta.get("data") or {}, *data, run=run)
    if "catalogue" in changed:
        changed[changed.index("catalogue")] = _catalogue_change(run, specs)
    if not changed and previous.get("keys", {}).get("tune") != keys["tune"]:
        # Name the options, so that a user who meant to resume can pass the old values.
        named = _changed_options(previous.get("options") or {}, options)
        if not named:
            raise RunError(_older_run(run, meta, options))
        changed = [f"rank or tune options ({'; '.join(named)})"]
    if not changed:
        changed = _changed_module_files(run, specs, cache_dir)
    if changed and not (meta.get("stages") or run.ranking_json.exists()
                        or run.candidates.exists()):
        # The fit before finished nothing (e.g. no module could be ranked, and its error said
        # to fix the catalogue and run the same command again): nothing to keep or discard.
        log.info("the %s changed since %s was fitted, but that fit finished no stage: "
                 "starting over", " and ".join(changed), escaped(run.path))
        _clear_run(run)
    elif changed:
        raise RunError(f"the {' and '.join(changed)} changed since {run.path} was fitted; "
                       f"{_new_or_restart('to discard the old results')}")


def _go_on_from_rank(run, fingerprints, keys, options, *, specs, cache_dir, progress):
    """A folder the stage commands made, no fit. A ranking alone (`hubensemble rank`: rank,
    look at the ranking, then fit) that this fit would write the same (`ranking_changes`,
    module files unchanged) becomes fit's rank stage, reused, and the log and (with
    `progress`) the terminal say so (`terminal.say`): the log alone left the terminal silent
    until the summary's "rank … (earlier run, reused)" (a new-user check). Other data is left
    to Run.attach_task's refusal, which names what differs. RunError naming what differs, or
    the later stages' results there with the commands that go on from them."""
    from hubensemble.formats import CANDIDATES_DIR, COST_FILE, ENSEMBLE_FILE, EXPORT_DIR
    from hubensemble.rank import load_ranking
    from hubensemble.rank.reuse import ranking_changes
    from hubensemble.terminal import say

    later = [n for n in (CANDIDATES_DIR, COST_FILE, ENSEMBLE_FILE, EXPORT_DIR)
             if (run.path / n).exists() and not (n == CANDIDATES_DIR and not any(
                 run.candidates.iterdir()))]
    if not later and not run.ranking_json.exists():
        return  # an empty candidates/: nothing to go on from, or to lose
    if later:
        raise RunError(
            f"{run.path} holds results of stage commands run outside `fit` "
            f"({', '.join(later)}): fit goes on from a ranking alone, not from a sweep or "
            f"ensemble it did not run. Go on with the "
            f"{option_word('stage commands', 'stage functions')} "
            f"({command_words('tune', run.path)}, then {command_words('ensemble')} and "
            f"{command_words('export')}), "
            f"{_new_or_restart('to discard them')}")
    ranking = load_ranking(run.path)
    if ranking.data_fingerprint != fingerprints["data"]:
        return
    changed = ranking_changes(ranking, specs, **option_table.kwargs_for("rank", options))
    changed += _changed_module_files(run, specs, cache_dir)
    if changed:
        raise RunError(
            f"{run.path} holds a ranking by {command_words('rank')} that this fit would not write: "
            f"{'; '.join(changed)} (ranked -> this fit). Give fit the ranking's options to go "
            f"on from it, {_new_or_restart('to rank again with this fit')}'s")
    mark(run, "rank", keys["rank"], sum(r.get("seconds") or 0.0 for r in ranking.rows),
         digests={"rank": file_digest(run.ranking_json)})
    say(SimpleNamespace(quiet=not progress),
        f"fit goes on from the ranking {command_words('rank')} wrote in "
        f"{escaped(run.ranking_json)} ({len(ranking.ok_rows)} module(s) ranked by "
        f"{ranking.metric} at {option_word('--profile', 'profile')} {ranking.profile}; "
        f"selected: {', '.join(ranking.selected) or 'none'}): the same catalogue, data and "
        f"rank options as this fit, so it is not ranked again; pass "
        f"{option_word('--restart', 'restart=True')} to rank again from scratch")


def _new_or_restart(then: str) -> str:
    """"use a new --out folder, or pass --restart `then`" in the caller's words (from Python,
    "out folder", "restart=True": `lockwords.option_word`): the way on of a fit refused
    because its folder holds results it would not go on from."""
    return (f"use a new {option_word('--out', 'out')} folder, or pass "
            f"{option_word('--restart', 'restart=True')} {then}")


def _name_own_export(run) -> None:
    """A reused export (of this ensemble: its digests are unchanged) is named in run.json
    again when another export was recorded since: the fit's summary and report describe the
    export it evaluates. New-user checks ran `ensemble --max-members 1` and `export --out
    elsewhere`, then fit, whose summary and report named that 1-member export as the
    8-member ensemble's; and `export --retrain-full --out elsewhere` (the same members,
    retrained), then fit, whose summary gave that export's retrained test figures while its
    Robustness section measured RUN/export."""
    record = carried(run, "export").get("record")
    if record and run.meta().get("export") != record:
        run.update(export=record)


def _interrupted(run, stage, seconds=None) -> float:
    """Adds `seconds` a stage ran before it stopped unfinished (an interrupt, an error) to
    run.json's count; without, takes the count out: the seconds earlier tries spent. The
    summary's time of a resumed stage was its last part only (a new-user check: tune
    "13.3 s" of its 47 s)."""
    if seconds is None and stage not in (run.meta().get("interrupted_seconds") or {}):
        return 0.0  # the usual case: no locked rewrite of run.json per stage for nothing
    taken = []

    def change(meta):
        counts = dict(meta.get("interrupted_seconds") or {})
        if seconds is None:
            taken.append(counts.pop(stage, 0.0))
        else:
            counts[stage] = round(counts.get(stage, 0.0) + seconds, 2)
        meta["interrupted_seconds"] = counts

    run.modify(change)
    return float(taken[0]) if taken else 0.0


def _export_files(run, export_path) -> str | None:
    """What changed in the export fit wrote (its files' sha256 as recorded), in words, or None.
    Its metadata asset alone was the export's digest: a damaged saved_model.pb was "done
    before, reused", and evaluate then failed (a new-user check)."""
    recorded = carried(run, "export").get("files")
    if recorded is None or not _lost(run, "export", export_path) or not os.path.isdir(
            export_path):
        return None  # an export from before files were recorded, or asked for elsewhere
    now = tree_sha256(export_path)
    changed = [f"{rel} {'is gone' if rel not in now else 'changed'}"
               for rel in recorded if now.get(rel) != recorded[rel]]
    changed += [f"{rel} was added" for rel in now if rel not in recorded]
    if not changed:
        return None
    return (f"{export_path} is not the export fit wrote: " + ", ".join(changed[:3])
            + (f" and {len(changed) - 3} more" if len(changed) > 3 else ""))


def _costs_outdated(run) -> str | None:
    """Why RUN/cost.json's counts are not this version's counting rule's (`RunCosts.outdated`),
    or None; a damaged file is the cost stage's to say."""
    from hubensemble.cost.records import read_run_costs

    try:
        return read_run_costs(run.path, say_outdated=False).outdated()
    except RunError:
        return None


def _lost(run, stage, export_path) -> bool:
    """Whether `stage`'s missing result is one fit recorded there (no command deletes it: a
    new-user check deleted ranking.json and fit said nothing); not an export asked for in
    another folder than the last one."""
    meta = run.meta()
    if not ((meta.get("stages") or {}).get(stage) or {}).get("done"):
        return False
    return stage != "export" or (Path(run.exported_to(meta) or "").resolve()
                                 == Path(export_path).resolve())


def _keep_or_drop(run, stage, output, now) -> None:
    """A stage this fit leaves out (evaluate under --no-corruptions or without a test split)
    whose earlier result is there: kept, and marked as an earlier run's, while the results it
    read are unchanged (`now`: stage -> digest); else it describes what is gone (e.g. the
    export before this one), so it is deleted and unrecorded, with a warning: the report and
    the closing table then never show it as this fit's."""
    record = (run.meta().get("stages") or {}).get(stage)
    if not record:
        return
    recorded = record.get("digests")
    # A record from before digests were kept is trusted, as _stage_done trusts it.
    fresh = recorded is None or all(recorded.get(s) == d for s, d in now.items())
    if Path(output).exists() and fresh:
        mark(run, stage, record.get("key"), record.get("seconds") or 0.0, reused=True,
             **({} if recorded is None else {"digests": recorded}))
        return
    if Path(output).exists():
        Path(output).unlink()
        log.warning("%s: %s described the %s before this fit's; deleted (a fit with "
                    "corruptions, or %s, measures it anew)", stage,
                    Path(output).name, " and ".join(now), command_words("evaluate"))

    def drop(meta):
        meta["stages"] = {k: v for k, v in (meta.get("stages") or {}).items() if k != stage}

    run.modify(drop)


def _run_stages(run, specs, task, data_args, options, keys, *, export, progress, cache_dir,
                use_cache):
    from hubensemble.ensemble import read_ensemble, run_ensemble
    from hubensemble.evaluate import ROBUSTNESS_FILE, evaluate_model, read_evaluation
    from hubensemble.evaluate import write_evaluation
    from hubensemble.export import export_ensemble
    from hubensemble.export.adopt import adopt_export, follow_evaluation, warmup_added
    from hubensemble.exportfolder import keep_replaced_export
    from hubensemble.formats import metadata_path
    from hubensemble.rank import load_ranking, run_rank
    from hubensemble.report import write_report
    from hubensemble.report.runfiles import retrained_test
    from hubensemble.terminal import say
    from hubensemble.tune import run_tune

    export_path = Path(absolute(export)) if export else run.export
    robustness_path = run.path / ROBUSTNESS_FILE

    # Each stage gets the FitOptions fields its function takes (options.kwargs_for), so a
    # new option reaches its stage by its row in the table alone.
    def rank():
        run_rank(run.path, specs, task, **option_table.kwargs_for("rank", options),
                 cache_dir=cache_dir, use_cache=use_cache, data_args=data_args,
                 progress=progress)

    def tune():
        run_tune(run.path, **option_table.kwargs_for("tune", options), task=task,
                 progress=progress, cache_dir=cache_dir)

    def cost():
        # FLOPs, parameters and latency of every candidate (cached by module and size): the
        # ensemble's budget, ensemble.json's costs and the report's Figure 2 read them.
        from hubensemble.cost.stage import run_cost

        run_cost(run.path, task=task, progress=progress)

    def ensemble():  # the export stage comes next: no "RUN/export is of an earlier" warning
        run_ensemble(run.path, **option_table.kwargs_for("ensemble", options),
                     export_follows=True)

    def export_():
        export_ensemble(run.path, export_path, **option_table.kwargs_for("export", options),
                        task=task, progress=progress, cache_dir=cache_dir)

    def evaluate():
        write_evaluation(evaluate_model(export_path, task,
                                        **option_table.kwargs_for("evaluate", options),
                                        progress=progress),
                         robustness_path)

    steps = [("rank", rank), ("tune", tune), ("cost", cost), ("ensemble", ensemble),
             ("export", export_)]
    if task.test is not None and options.corruptions is not False:
        steps.append(("evaluate", evaluate))
    # The cost pass is keyed by tune's key: it depends on the candidates and nothing else.
    keys = {**keys, "cost": keys["tune"]}
    outputs = {"rank": run.ranking_json, "cost": run.cost_json, "ensemble": run.ensemble_json,
               "export": export_path / "saved_model.pb", "evaluate": robustness_path}
    # What identifies each stage's result: its file (the export: its metadata asset, which
    # names the members), the sweep's: its trial records.
    results = {**outputs, "export": Path(metadata_path(export_path))}

    known = {}  # stage -> digest of its result, read once per fit until the stage reruns

    def digests(names):
        for s in names:
            if s not in known:
                known[s] = (candidates_digest(run.candidates) if s == "tune"
                            else file_digest(results[s]))
        return {s: known[s] for s in names}

    seconds, ran = {}, []
    for name, fn in steps:
        read = (name, *STAGE_INPUTS.get(name, ()))
        present = outputs.get(name) is None or Path(outputs[name]).exists()
        if not present and _lost(run, name, export_path):
            log.warning("%s: %s is gone; running %s again", name, escaped(outputs[name]), name)
        now = digests(read)
        done = present and stage_done(run, name, keys[name], now, ran=ran)
        if done and name == "cost" and (why := _costs_outdated(run)):
            log.info("cost: %s %s; running cost again", escaped(outputs[name]), why)
            done = False
        recorded = ((run.meta().get("stages") or {}).get(name) or {}).get("digests") or {}
        # Another command's export (also when this fit recorded none: stopped before its
        # export stage, or between writing its export and recording it): kept when it is
        # the one fit would write (`adopt_export`), else moved aside and said where it went.
        if name == "export" and present and not done and recorded.get(name) != now[name]:
            before = (run.meta().get("stages") or {}).get("export") or {}
            if kept := adopt_export(run, export_path, retrain_full=options.retrain_full):
                say(SimpleNamespace(quiet=not progress), f"export: {kept}")
                mark(run, name, keys[name], run.meta()["export"].get("seconds") or 0.0,
                     digests=now, files=tree_sha256(export_path), record=run.meta()["export"])
                done = True
                if follow_evaluation(run, export_path, before, robustness_path):
                    known.pop("evaluate", None)  # its record now names the kept export
                    log.info("evaluate: %s measured the same model (%s); it names the kept "
                             "export now", ROBUSTNESS_FILE, escaped(export_path))
            else:
                log.warning("export: %s", keep_replaced_export(run, export_path))
        # Its metadata asset the same, its other files not: damage, not another command.
        files = _export_files(run, export_path) if done and name == "export" else None
        if done and not files:
            log.info("%s: done before, reused", name)
            seconds[name] = run.meta()["stages"][name]["seconds"]
            carry = carried(run, name)
            if name == "export" and (warmed := warmup_added(export_path)):
                say(SimpleNamespace(quiet=not progress), f"export: {warmed}")
                carry["files"] = tree_sha256(export_path)
            # The summary then says this run did not spend the recorded time on it.
            mark(run, name, keys[name], seconds[name], reused=True, digests=now, **carry)
            if name == "export":
                _name_own_export(run)
            continue
        if files:
            log.warning("export: %s; running export again", files)
        reraise_stop()  # a Ctrl-C / SIGTERM whose exception Python ignored: no next stage
        log.info("%s: starting", name)
        start = time.time()
        try:
            fn()
        except BaseException as e:  # RUN/log.txt says so (from Python too: no CLI line)
            with contextlib.suppress(Exception):  # never hide why it stopped
                _interrupted(run, name, time.time() - start)
                log.info("%s: stopped after %.1f s (%s)", name, time.time() - start,
                         type(e).__name__)
            raise
        ran.append(name)
        earlier = _interrupted(run, name)
        seconds[name] = time.time() - start + earlier
        known.pop(name, None)  # its result was just rewritten
        mark(run, name, keys[name], seconds[name], reused=False, digests=digests(read),
             **({"files": tree_sha256(export_path), "record": run.meta().get("export")}
                 if name == "export" else {}),
             **({"interrupted_seconds": round(earlier, 2)} if earlier else {}))
        log.info("%s: done in %.1f s%s", name, seconds[name] - earlier,
                 f" ({earlier:.1f} s more before it stopped)" if earlier else "")
    # A stop Python ignored during the last stage: that stage is done (marked above), the
    # command stops here, and the same command again reuses it all (a new-user check).
    reraise_stop()
    for name in sorted(set(outputs) - {n for n, _ in steps}):  # evaluate, when left out
        _keep_or_drop(run, name, outputs[name], digests(STAGE_INPUTS.get(name, ())))
    start = time.time()
    paths = write_report(run.path)  # always: cheap, and it shows this run's latest state
    seconds["report"] = time.time() - start
    mark(run, "report", keys["report"], seconds["report"])
    ensemble_record = read_ensemble(run.path)
    after = retrained_test(run, run.meta())[1]  # --retrain-full: measured on the export
    # Absolute, as the summary names them (a relative --out gave 'runs/digits/export').
    return FitResult(run_dir=run.path, ranking=load_ranking(run.path),
                     ensemble=ensemble_record, metrics=after or ensemble_record.get("test"),
                     export_path=Path(absolute(export_path)),
                     report_paths=tuple(Path(absolute(p)) for p in paths),
                     robustness=(read_evaluation(robustness_path)
                                 if robustness_path.exists() else None),
                     stage_seconds=seconds, skipped=[tuple(s) for s in task.skipped])
