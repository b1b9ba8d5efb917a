"""fit(): rank -> tune -> ensemble -> export -> evaluate -> report over one run directory."""

import contextlib
import dataclasses
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from hubensemble import environment
from hubensemble import options as option_table
from hubensemble.datachange import require_validation
from hubensemble.errors import RunError, checks_keywords, reraise_stop
from hubensemble.exportfolder import folder_lock
from hubensemble.exportrecord import export_record
from hubensemble.fitargs import catalogue_specs, check_data, check_out_of_other_runs, check_paths
from hubensemble.dataargs import data_keywords
from hubensemble.fitcall import check_fit_arguments, export_word, fit_data_args
# Every choice of a fit (its own module, for the command line's checks): re-exported here.
from hubensemble.fitoptions import FitOptions
from hubensemble.fittedoptions import as_fitted_in
from hubensemble.fitresults import (_export_files, _interrupted, _keep_or_drop, _lost,
                                    _members_rewritten, _name_own_export)
from hubensemble import resume
from hubensemble.rundir import DataArgs, Run
from hubensemble.stagerecords import (BOOKKEEPING, PROVENANCE, STAGE_INPUTS, candidates_digest,
                                      carried, file_digest, mark, members_digest,
                                      planned_trials, read_keys, redo_way, stage_done, stage_keys,
                                      stage_records, tree_sha256, view_digest)
from hubensemble.terminal import shows_progress
from hubensemble.text import absolute, closest_name, counted, escaped
from hubensemble.threads import old_objects_frozen
from hubensemble import kerasenv
from hubensemble.kerasenv import with_stage_settings

if TYPE_CHECKING:  # for type checkers only: fit imports rank where it runs it
    from hubensemble.rank.ranking import Ranking

log = logging.getLogger(__name__)

STAGES = option_table.STAGES


@checks_keywords
@dataclasses.dataclass
class FitResult:
    """What `fit` produced; every field is also on disk in the run directory. `run_dir`,
    `export_path` and `report_paths` are absolute, as `summary`, `report` and `export` print
    them: as typed, a link kept (text.absolute, not Path.resolve). `skipped`:
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
    # (the closing table's line on the labels,) as fit's report computed it; None: computed
    # when `summary` is called (`report.summary_table`)
    labels_line: tuple | None = dataclasses.field(default=None, repr=False)

    def summary(self):
        """The test-set table of best single vs ensemble, a note naming the classes without a
        test (or validation) example, stage times and paths (as printed). The data's skipped
        files are not in it: fit's data summary said them before (a warning, from Python
        too), and the command line prints this after it: it said the count twice."""
        from hubensemble.report import summary_table

        return summary_table(self.run_dir, labels_line=self.labels_line)

    def __repr__(self):
        from hubensemble.report.write import result_repr
        return result_repr(self)


@shows_progress
@with_stage_settings
def fit(catalogue, data, out, *, export=None, data_args=None, restart=False, progress=True,
        cache_dir=None, use_cache=True, options=None, **option_values) -> FitResult:
    """Runs the whole method on one data set and returns a FitResult.

    `catalogue` is one or more catalogue YAML paths or ModuleSpec records; `data` a data spec
    (see docs/data.md) or a `Task` already in memory; `out` the run directory; `export` where
    the SavedModel goes (default RUN/export).
    Stage options are FitOptions fields, e.g. ``profile="cpu"``, ``top_k=5``,
    ``sweep="hyper"`` (hubensemble.options lists them with their defaults and allowed values);
    `options` is a FitOptions to start from. The data options, the command line's data flags,
    are keywords too (``flip=False`` for ``--no-flip``, ``data_seed=3``, ``val_fraction=0.2``,
    ``min_per_class=1``: `dataargs.data_keywords`), or `data_args`, a ``hubensemble.DataArgs``
    or a dict of its fields (``{"flip": False}``); with a Task, load_task takes them. An
    unknown option raises TypeError; a value outside an option's choices or range raises
    options.OptionError, before anything runs.

    Before the run folder is created (so a refused fit leaves no folder, log or lock), fit
    refuses what the command line refuses before its own, with the same checks: a
    `catalogue`, `data`, `out`, `export` or `cache_dir` of another type, and `options`,
    `restart`, `progress` or `use_cache` (`check_fit_arguments`), `data_args` or a data
    keyword (`fitcall.fit_data_args`: a field mistyped or given twice) (TypeError), an empty
    `out`, `export` or `cache_dir` or an unknown `corruptions` name (OptionError), a catalogue
    file that is missing or
    malformed (CatalogueError) or lists no module, a data spec that cannot be read
    (`data.check_spec`: DataError, e.g. a missing npz file or an unknown sklearn: name), a
    --strategy the machine cannot serve, `modules` the catalogue lacks, a `budget` that
    cannot hold one group of the sweep (HubensembleError), an `out` whose name is not UTF-8
    for a sweep through Keras Tuner (every one but probe: `formats.check_tuner_folder`), an
    `export` folder in the way or whose name TensorFlow cannot reach (not UTF-8: the default
    OUT/export too) (RunError), and `out` or `export` inside a folder: spec's folder
    (DataError). A fit
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
    from hubensemble.formats import check_tuner_folder
    from hubensemble.fittedagain import on_fitted_run, replaced
    from hubensemble.pastedway import check_sweep_call
    from hubensemble.sweepagain import python_fit_again
    from hubensemble.preflight import check_strategy
    from hubensemble.restartcheck import check_fit_restart
    from hubensemble.rank.ranking import catalogue_entries_fingerprint, catalogue_fingerprint

    names = [f.name for f in dataclasses.fields(FitOptions)]
    data_names = list(data_keywords())  # the command line's data flags: flip=False, …
    unknown = sorted(set(option_values) - set(names) - set(data_names))
    if unknown:  # with the command line's "did you mean" (topk -> top_k)
        said = [n + (f" (did you mean {hint}?)" if (hint := closest_name(n, names + data_names))
                     else "") for n in unknown]
        raise TypeError(f"fit() got unknown {'option' if len(said) == 1 else 'options'} "
                        f"{', '.join(said)}; the options are "
                        f"{', '.join(names)}; the data options are {', '.join(data_names)}")
    data_values = {n: option_values.pop(n) for n in data_names if n in option_values}
    check_fit_arguments(options=options, restart=restart,
                        progress=progress, use_cache=use_cache, given=option_values,
                        fit_options=FitOptions)
    data_args = fit_data_args(data, data_args, data_values)
    options = dataclasses.replace(options or FitOptions(), **option_values)
    if not any(options.corruptions is v for v in (True, False, None)):  # names, "all", …
        from hubensemble.evaluate import check_evaluate_options

        # Checked as evaluate checks them, now: the evaluate stage refused a mistyped name
        # after the sweep (and stopped at an int: "'int' object is not iterable").
        check_evaluate_options("test", options.corruptions if isinstance(
            options.corruptions, (str, list, tuple)) else [options.corruptions],
            option_table.defaults_for("evaluate")["severities"])
    # What the command line refuses before its run folder (preflight.check_inputs), by the same
    # functions: a refused fit leaves no folder, log or lock behind.
    environment.check_environment()  # HUBENSEMBLE_*_TIMEOUT / _DEADLINE seconds
    check_paths(out=out, export=export, cache_dir=cache_dir)
    specs = catalogue_specs(catalogue)
    check_strategy(options.strategy, options.tpu)
    inputs = dict(export=export, cache_dir=cache_dir, use_cache=use_cache, restart=restart)
    again = python_fit_again(out, options, catalogue=catalogue, data=data, data_args=data_args,
                             inputs=inputs)
    if not restart:  # on a fitted run, the call given back passes its options' check too
        again = on_fitted_run(
            again, python_fit_again(out, options, catalogue=catalogue, data=data,
                                    data_args=data_args, inputs={**inputs, "restart": True}),
            out, lambda budget, changed: replaced(options, budget, changed),
            data_args=(lambda: check_data(data, data_args, out=out, export=export))
            if isinstance(data, str) else None, specs=specs)
    # The modules and the budget in one refusal whose call (the whole call, for a module
    # meant as for a budget) holds both; modules None: which the ranking selects is not
    # known before it ranks (top_k, tau)
    check_sweep_call(options.modules, [{"name": s.name} for s in specs], sweep=options.sweep,
                     budget=options.budget, source="catalogue", again=again)
    if restart:  # a module moved since rank: refused before clear_run removes anything
        check_fit_restart(out, specs, options.modules)
    check_tuner_folder(out, options.sweep, "out")  # before the rank, not by tune after it
    data_args = check_data(data, data_args, out=out, export=export)
    from hubensemble.formats import EXPORT_DIR, check_export_target

    # Before the run folder (not after the sweep): the folder is fine to write and load; --out
    # itself first (its export inside another run's folder was named, "run a/export/export").
    check_out_of_other_runs(out)
    check_export_target(export or Path(out) / EXPORT_DIR, export_word(export), run_dir=out)
    kerasenv.check_backend()  # every fit imports Keras (even a finished run's): before the data
    run = Run(out)
    # An --export outside the run has its own lock: for the whole fit, which ends writing there.
    with run.fit_log(), folder_lock(export or run.export, run.path, "fit", "--export", "export"):
        from hubensemble.memory import say_memory

        if not restart:  # budget=8 where it fitted None, resolved to 8: the run's, keyed so
            options = as_fitted_in(options, run)
        # Data options or options other than the run's: said before the data loads (run.json).
        resume.refuse_changed_options(run, options, restart=restart, specs=specs,
                                      data_args=data_args if isinstance(data, str) else None)

        # Too little memory for the stages: said before the data loads, and in RUN/log.txt
        # (not again when the command line said it before TensorFlow loaded: memory_key).
        # Every option, as the command line's namespace gives them (a fit(sweep="probe")
        # from Python was counted as fine-tuning: the sweep was left out of a hand-made list).
        say_memory("fit", out, {**dataclasses.asdict(options), "specs": specs})
        if isinstance(data, str):
            task = data_args.load(summary_follows=True)  # _say_data says its skips
        else:
            # A Task from Python: later stages of this run need it passed in again.
            task = data
            data_args = data_args or DataArgs.of_task(task)
        _say_data(task, run.skipped_list_for(task, restart=restart), progress)
        if run.new_task(task, restart=restart):  # not again at each resumed fit
            from hubensemble.data.folder import warn_class_notes
            warn_class_notes(task)
        require_validation(task)  # tune and the ensemble choose on it: before rank's minutes
        fingerprints = {"catalogue": catalogue_fingerprint(specs), "data": task.fingerprint,
                        "entries": catalogue_entries_fingerprint(specs)}  # not a stage key
        keys = stage_keys(fingerprints["catalogue"], fingerprints["data"], options)
        if restart or not stage_done(run, "tune", keys["tune"]):  # the sweep will run: before
            from hubensemble.tune.strategies import check_tpu_serves  # rank, not after it

            check_tpu_serves(options.strategy, options.tpu)
        # A ranking `hubensemble rank` wrote (no fit before): check_inputs says it is taken.
        said = ("rank",) if not restart and not run.meta().get("fit") else ()
        resume.check_inputs(run, fingerprints, keys, options, restart=restart, specs=specs,
                            data=(task, data_args), cache_dir=cache_dir, progress=progress)
        if run.meta().get("data"):
            # The same data (checked above), loaded now: its record says what became of every
            # file this time (a file added since, unreadable or hidden, left the counts of
            # the first load in run.json and the report when rank was reused).
            run.attach_task(task, data_args, command="fit")
        run.update(fit={"catalogue": [s.source or s.name for s in specs],
                        "data": data_args.spec, "fingerprints": fingerprints,
                        "options": dataclasses.asdict(options), "keys": keys,
                        "export": export and export_record(run.path, export)})
        reads = read_keys(fingerprints["catalogue"], fingerprints["data"], options)
        with old_objects_frozen():  # evaluate too: Python's collections skip older objects
            return _run_stages(run, specs, task, data_args, options, keys, reads,
                               export=export, progress=progress, cache_dir=cache_dir,
                               use_cache=use_cache, said=said)


def _say_data(task, skipped_in, progress) -> None:
    """The data's summary (`Task.summary`), for Python and the command line alike: said on
    stderr with `progress` (the command line's note, unless -q) and in RUN/log.txt; a
    WARNING when files were skipped as unreadable, which a notebook shows (Python's fit
    logged them at INFO: a notebook user never saw them; FitResult.skipped lists them)."""
    from hubensemble.terminal import PRINTED, say

    from hubensemble.dataargs import log_skips

    text = task.summary(skipped_in=skipped_in)
    if task.skipped:
        log.warning("%s", text)
    else:  # logged as fit's other lines: `say` logs as the command line's (hubensemble.cli)
        log.info("%s", text, extra={PRINTED: True})
        say(SimpleNamespace(quiet=not progress), text, logged=False)
    # The files after the summary's three, a line per reason naming three of a shared one's
    # and where run.json lists them all, as the commands' own load (cliargs.load_data): a line
    # naming 4,000 files of one reason was no use to read.
    log_skips(task, after_summary=True, skipped_in=skipped_in)


def _say_not_redone(run, said=()) -> None:
    """Warns of each candidate folder without a readable trial.json (`sweepstate.without_record`)
    that the sweep fit's tune just ran did not plan (run.json's tune.sweeps.<sweep>.trials),
    with the way that redoes it (`stagerecords.redo_way`, as `damage` says it before the
    tune): fit said "tune: candidates/T: trial.json unreadable (…); running tune again"
    (`stagerecords.stage_done`), while its tune
    of --budget 4 planned 0000-0003 and left T, a trial of an earlier `tune` of 8, as it was.
    The folders in `said` were said so before the tune ran (`stagerecords.damage`)."""
    from hubensemble.fileio import read_json
    from hubensemble.sweepstate import without_record

    try:
        sweeps = read_json(run.meta_path)["tune"]["sweeps"]
        names = sorted(os.listdir(run.candidates))
    except (OSError, ValueError, KeyError, TypeError):
        return
    for name in names:
        planned = (sweeps.get(name.split("-", 1)[0]) or {}).get("trials") if isinstance(
            sweeps, dict) else None
        if isinstance(planned, list) and name not in planned and name not in said and \
                without_record(run.candidates, name):
            log.warning("tune: candidates/%s has no readable trial.json, and fit's tune planned "
                        "%s without it, so fit does not redo it: %s", name,
                        counted(len(planned), "trial"), redo_way(run, name))


def _costs_outdated(run) -> str | None:
    """Why RUN/cost.json's counts are not this version's counting rule's (`RunCosts.outdated`),
    or None; a damaged file is the cost stage's to say."""
    from hubensemble.cost.records import read_run_costs

    try:
        return read_run_costs(run.path, say_outdated=False).outdated()
    except RunError:
        return None


def planned_specs(run, options) -> tuple[list, list]:
    """(the ModuleSpecs of the modules fit's sweep (`options`: a FitOptions; every part of a
    "+" sweep) will tune, in plan order; the PlanEntry list of every part, which
    `check_budget_before_tune` costs each module by at its trials' size), from the plans
    `sweepplan.plan_sweep` makes of run `run`'s ranking as fit plans them (plan warnings
    left to the sweep, which says them). The ranking's selection stood for them: a seeds
    sweep tunes one generalist and a combined one the modules within tau, so a --max-gflops
    only an unselected planned module meets was refused before the sweep, and
    one only an unplanned selected module met went on to a sweep the ensemble then refused.
    RunError or HubensembleError as `run_tune` refuses the same plan."""
    import warnings

    from hubensemble.runspecs import module_specs
    from hubensemble.sweepplan import plan_sweep
    from hubensemble.threads import warnings_block
    from hubensemble.sweeps import sweep_parts

    ranking, modules, task_record = run.tune_inputs()
    specs = module_specs(run, modules)  # a hand-edited entry: named, as tune names it
    entries = []
    # warnings_block, not a bare catch_warnings: Python's filters are one per process, held
    # apart from other threads' changes (threads.py).
    with warnings_block():
        warnings.simplefilter("ignore")
        for part in sweep_parts(options.sweep):
            entries += plan_sweep(
                ranking, specs, sweep=part, task=task_record, profile=options.profile,
                budget=options.budget, modules=options.modules, seed=options.seed,
                head_init=options.head_init, run_dir=run.path)
    return [specs[n] for n in dict.fromkeys(e.module for e in entries)], entries


def _run_stages(run, specs, task, data_args, options, keys, reads, *, export, progress,
                cache_dir, use_cache, said=()):
    """fit's stages in `run`, each run or, done before with the same key and inputs, reused:
    a reused stage is said on the terminal with `progress` ("rank: done before, reused"; a
    re-run said nothing until the summary's "(earlier run, reused)"), but the stages in
    `said`, whose reuse was said before (`resume._go_on_from_rank`), in the log alone. The
    rank stage, however it ends (run, reused, selected again for a new --top-k), then says
    its selection (`Ranking.selection_words`; the log, and the terminal with `progress`);
    reused, then the notes its modules' loads warned of (`rank.rownotes.note_lines`), a
    warning each: the loads that said them were an earlier fit's or rank's.
    `reads`: `stagerecords.read_keys`, recorded beside each key: a stage whose key changed
    only in the options of rank (--top-k) is reused while the results it reads are the same."""
    from hubensemble.cost.records import figures_digest
    from hubensemble.ensemble import read_ensemble, run_ensemble
    from hubensemble.evaluate import ROBUSTNESS_FILE, evaluate_model, read_evaluation
    from hubensemble.evaluate import write_evaluation
    from hubensemble.export import export_ensemble
    from hubensemble.export.adopt import adopt_export, follow_evaluation, warmup_added
    from hubensemble.exportfolder import keep_replaced_export, other_run
    from hubensemble.formats import check_export_target, metadata_path, read_export_metadata
    from hubensemble.rank import load_ranking, run_rank
    from hubensemble.rank.rownotes import note_lines
    from hubensemble.report.runfiles import retrained_test
    from hubensemble.report.write import fit_report
    from hubensemble.sweeps import sweep_parts
    from hubensemble.terminal import say
    from hubensemble.tune import run_tune

    export_path = Path(absolute(export)) if export else run.export
    robustness_path = run.path / ROBUSTNESS_FILE

    # Each stage gets the FitOptions fields its function takes (options.kwargs_for), so a
    # new option reaches its stage by its row in the table alone.
    def rank():
        # The chosen selection rule alone: top_k at its default beside a threshold or greedy
        # is a second rule to run_rank (rank.ranking._one_rule_given), and no part of the
        # selection it records.
        kwargs = option_table.kwargs_for("rank", options)
        if options.threshold is not None or options.greedy:
            kwargs["top_k"] = None
        run_rank(run.path, specs, task, **kwargs, cache_dir=cache_dir, use_cache=use_cache,
                 data_args=data_args, progress=progress)
        say_selection()

    def say_selection():  # as rank's stage ends, however: run, reused or selected again
        say(SimpleNamespace(quiet=not progress), load_ranking(run.path).selection_words())

    def tune():
        from hubensemble.cost.stage import check_budget_before_tune

        # A --max-gflops no module can meet with its head is refused before the sweep, not
        # by the ensemble after it (31 s on digits, hours on real data): the modules the
        # sweep's plan tunes bound its candidates' cost.
        if options.max_gflops is not None:
            # each module at the size its planned trials serve at (a probe's: its own)
            specs, plan = planned_specs(run, options)
            try:
                check_budget_before_tune(specs, task, options.profile, options.max_gflops,
                                         cache_dir=cache_dir, plan=plan)
            except RunError as e:  # why the run stopped, for the report (budgetrefusal)
                from hubensemble.budgetrefusal import record_refusal
                from hubensemble.cost.records import Limits

                record_refusal(run.path, Limits(gflops=options.max_gflops), str(e),
                               stage="tune")
                raise
        run_tune(run.path, **option_table.kwargs_for("tune", options), task=task,
                 progress=progress, cache_dir=cache_dir, said_redone=said_redone)
        _say_not_redone(run, said=outside)

    def cost():
        # FLOPs, parameters and latency of every candidate (cached by module and size): the
        # ensemble's budget, ensemble.json's costs and the report's Figure 2 read them.
        from hubensemble.cost.stage import run_cost

        run_cost(run.path, task=task, progress=progress)

    def ensemble():  # the export stage comes next: no "RUN/export is of an earlier" warning
        run_ensemble(run.path, **option_table.kwargs_for("ensemble", options),
                     export_follows=True)

    def export_():
        from hubensemble.memory import say_memory

        # fit's own note came before the ensemble had members, and a stage of a fit says
        # none of its own (`runwriter.writes_run`): the export's need grows with each member
        # it times (0.40 GB each at 224 px), so it is said here, once the members are known.
        say_memory("export", run.path, option_table.kwargs_for("export", options))
        # Checked again in fit's words: the folder may have changed since fit's check before
        # rank, and export_ensemble's own check names its keyword (out_dir, --out), which no
        # caller of fit typed.
        check_export_target(export_path, export_word(export), run_dir=run.path)
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
    reads = {**reads, "cost": reads["tune"]}
    outputs = {"rank": run.ranking_json, "cost": run.cost_json, "ensemble": run.ensemble_json,
               "export": export_path / "saved_model.pb", "evaluate": robustness_path}
    # What identifies each stage's result: its file (the export: its metadata asset, which
    # names the members), the sweep's: its trial records.
    results = {**outputs, "export": Path(metadata_path(export_path))}

    known = {}  # stage -> digest of its result, read once per fit until the stage reruns

    def digests(names):
        for s in names:
            if s not in known:
                known[s] = (candidates_digest(run.candidates) if s == "tune" else
                            members_digest(run) if s == "members" else file_digest(results[s]))
        return {s: known[s] for s in names}

    def views(name):  # what `name` reads of each result with BOOKKEEPING fields, and what
        # its own stage compares of its own (PROVENANCE fields left out)
        want = [("view", s) for s in STAGE_INPUTS.get(name, ()) if s in BOOKKEEPING]
        want += [("own", name)] if name in PROVENANCE else []
        for kind, s in want:
            if (kind, s) not in known:
                known[kind, s] = view_digest(s, results[s], own=kind == "own")
        return {s: known[kind, s] for kind, s in want}

    def with_views(found, name):  # recorded beside the digests (stage_done reads them there)
        return {**found, **({"views": views(name)} if views(name) else {})}

    seconds, ran, reselected = {}, [], []
    outside = []  # candidate folders said before tune as outside fit's plan (stage_done)
    said_redone = []  # trials of fit's plan said before tune as damaged: tune says them no more
    # cost.json's digest before a recount that gave the same figures (a newer counting rule,
    # the same numbers): the stages that read the old file keep their results.
    same_costs = None
    for name, fn in steps:
        read = (name, *STAGE_INPUTS.get(name, ()))
        present = outputs.get(name) is None or Path(outputs[name]).exists()
        if not present and _lost(run, name, export_path):
            log.warning("%s: %s is gone; running %s again", name, escaped(outputs[name]), name)
        now = digests(read)
        seen = dict(now)  # what stage_done compares: the old cost.json's digest for the new
        recorded = (stage_records(run.meta(), run).get(name) or {}).get("digests") or {}
        if same_costs and now.get("cost") == same_costs[1] and \
                recorded.get("cost") == same_costs[0]:
            seen["cost"] = same_costs[0]
        # Another run's export where this fit exports (a copy's run.json records the export
        # stage of the run it was copied from: the same digests, the same files): export's
        # rule (`other_run` told the folder), not "done before, reused" as this run's own.
        theirs = name == "export" and present and other_run(
            read_export_metadata(export_path, strict=False), run.path, run.meta(), export_path)
        done = present and not theirs and stage_done(
            run, name, keys[name], seen, ran=ran, views=views(name), reads=reads[name],
            reselected=reselected, outside=outside if name == "tune" else None,
            redone=said_redone if name == "tune" else None)
        if done and name == "cost" and (why := _costs_outdated(run)):
            log.info("cost: %s %s; running cost again", escaped(outputs[name]), why)
            done = False
        # Another command's export (also when this fit recorded none: stopped before its
        # export stage, or between writing its export and recording it): kept when it is
        # the one fit would write (`adopt_export`), else moved aside and said where it went.
        if name == "export" and present and not done and (
                theirs or recorded.get(name) != now[name]):
            before = stage_records(run.meta(), run).get("export") or {}
            # Made before or after its members' files changed? Its metadata cannot tell.
            kept = None if _members_rewritten(recorded, now) else adopt_export(
                run, export_path, retrain_full=options.retrain_full)
            if kept:
                say(SimpleNamespace(quiet=not progress), f"export: {kept}")
                mark(run, name, keys[name], run.meta()["export"].get("seconds") or 0.0,
                     reads=reads[name], digests=with_views(now, name),
                     files=tree_sha256(export_path), record=run.meta()["export"])
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
            log.info("%s: done before, reused", name)  # (said on the terminal too)
            say(SimpleNamespace(quiet=not progress or name in said),
                f"{name}: done before, reused", logged=False)
            if name == "rank":  # what it selected, as when it runs: a resumed fit's user too
                say_selection()
                # What a module's load warned of was said as it loaded, in the fit that ran
                # rank; said again after the selection, one line each (its notes kept in
                # ranking.json: a model fed the wrong value range, …).
                for line in note_lines(load_ranking(run.path)):
                    log.warning("%s", line)
            seconds[name] = run.meta()["stages"][name]["seconds"]
            # Selected again by this fit (reselect.top_k_change): tune then says rank's
            # selection changed, not "another command rewrote it"; the mark below drops the
            # flag.
            if run.meta()["stages"][name].get("reselected"):
                ran.append(name)
                reselected.append(name)
            carry = carried(run, name)
            if name == "export" and (warmed := warmup_added(export_path)):
                say(SimpleNamespace(quiet=not progress), f"export: {warmed}")
                carry["files"] = tree_sha256(export_path)
            # The summary then says this run did not spend the recorded time on it.
            mark(run, name, keys[name], seconds[name], reused=True, reads=reads[name],
                 digests=with_views(now, name), **carry)
            if name == "export":
                _name_own_export(run)
            continue
        if files:
            log.warning("export: %s; running export again", files)
        reraise_stop()  # a Ctrl-C / SIGTERM whose exception Python ignored: no next stage
        log.info("%s: starting", name)
        start = time.time()
        figures = figures_digest(run.path) if name == "cost" else None
        try:
            fn()
        except BaseException as e:  # RUN/log.txt says so (from Python too: no CLI line)
            with contextlib.suppress(Exception):  # never hide why it stopped
                from hubensemble.budgetrefusal import refused_since

                # A refusal for its budget is no run that stopped in the stage: its seconds
                # are not counted as "earlier runs that stopped in it" (the report said so).
                refused = refused_since(run, name, start)
                if not refused:
                    _interrupted(run, name, time.time() - start)
                log.info("%s: %s after %.1f s (%s)", name, "refused" if refused else "stopped",
                         time.time() - start, type(e).__name__)
            raise
        if figures is not None and figures == figures_digest(run.path):
            same_costs = (now["cost"], file_digest(run.cost_json))
            log.info("cost: counted again, the same figures as %s held; the stages that read "
                     "it keep their results", escaped(run.cost_json))
        else:
            ran.append(name)
        earlier = _interrupted(run, name)
        seconds[name] = time.time() - start + earlier
        for was in (name, ("view", name), ("own", name)) + (
                ("members",) if name in ("tune", "ensemble") else ()):
            known.pop(was, None)  # its result was just rewritten (members: their files)
        mark(run, name, keys[name], seconds[name], reused=False, reads=reads[name],
             digests=with_views(digests(read), name),
             **({"files": tree_sha256(export_path), "record": run.meta().get("export")}
                 if name == "export" else {}),
             **({"interrupted_seconds": round(earlier, 2)} if earlier else {}),
             # fit's plan, whose trials alone its tune redoes (stagerecords.damage)
             **({"trials": planned_trials(run, sweep_parts(options.sweep))}
                if name == "tune" else {}))
        log.info("%s: done in %.1f s%s", name, seconds[name] - earlier,
                 f" ({earlier:.1f} s more in earlier runs that stopped in it)" if earlier else "")
    # A stop Python ignored during the last stage: that stage is done (marked above), the
    # command stops here, and the same command again reuses it all (a new-user check).
    reraise_stop()
    for name in sorted(set(outputs) - {n for n, _ in steps}):  # evaluate, when left out
        _keep_or_drop(run, name, outputs[name], digests(STAGE_INPUTS.get(name, ())))
    start = time.time()
    # Always: cheap, and it shows this run's latest state; with the closing table's line on
    # the labels, which shares the report's label checks (each runs once).
    paths, labels_line = fit_report(run.path)
    seconds["report"] = time.time() - start
    mark(run, "report", keys["report"], seconds["report"])
    ensemble_record = read_ensemble(run.path)
    after = retrained_test(run, run.meta())[1]  # --retrain-full: measured on the export
    # Absolute, as the summary names them (a relative --out gave 'runs/digits/export',
    # and run_dir PosixPath('runs/digits')).
    return FitResult(run_dir=Path(absolute(run.path)), ranking=load_ranking(run.path),
                     ensemble=ensemble_record, metrics=after or ensemble_record.get("test"),
                     export_path=Path(absolute(export_path)),
                     report_paths=tuple(Path(absolute(p)) for p in paths),
                     robustness=(read_evaluation(robustness_path)
                                 if robustness_path.exists() else None),
                     stage_seconds=seconds, skipped=[tuple(s) for s in task.skipped],
                     labels_line=(labels_line,))
