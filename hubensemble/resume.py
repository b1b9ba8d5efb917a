"""Whether fit goes on in a run folder that holds results: what changed since it was fitted
(refused, each change named in the words the user types), a ranking `hubensemble rank` wrote
taken over as fit's rank stage, and --restart's clearing of the results.
"""

import dataclasses
import json
import logging
import os
import shutil
from types import SimpleNamespace

from hubensemble import options as option_table
from hubensemble.errors import RunError
from hubensemble.fileio import is_temp
from hubensemble.fittedoptions import as_fitted
from hubensemble.formats import FIT_LOCK, FIT_LOCK_OWNER, RUN_ENTRIES
from hubensemble.lockwords import command_words, on_command_line, option_word
# The per-module words of a changed catalogue: rank.reuse (the rank -> fit check says them too).
from hubensemble.rank.reuse import catalogue_changes
from hubensemble.stagerecords import file_digest, mark, same_key
from hubensemble.sweeplock import is_member_file, remove_free_locks
from hubensemble.text import counted, escaped

log = logging.getLogger(__name__)


def clear_run(run):
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


def _changed_module_files(run, specs, cache_dir) -> list[str]:
    """["files of modules A, B"] when modules ranked in `run` changed in place since (their
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
    from hubensemble.rerun import shown

    now = json.loads(json.dumps(dataclasses.asdict(options), default=str))
    names = [*options.STAGE_FIELDS["rank"], *options.STAGE_FIELDS["tune"]]
    # An option added since (`Option.keyed_at_default` false) that a run's record lacks was
    # at its default there: keyed by nothing until given.
    previous = {**{n: option_table.get(n).default for n in names
                   if not option_table.get(n).keyed_at_default}, **previous}
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
    recorded = fit_record(run, meta).get("options") or {}
    names = [*options.STAGE_FIELDS["rank"], *options.STAGE_FIELDS["tune"]]
    missing = [option_word(option_table.get(n).cli_flags[0], n) for n in dict.fromkeys(names)
               if n not in recorded and option_table.get(n).keyed_at_default]
    version = (meta.get("versions") or {}).get("hubensemble")
    written = ", ".join(str(v) for v in (f"hubensemble {version}" if version else None,
                                         meta.get("created")) if v)
    lacks = (f"it records no {', '.join(missing)}, options added since" if missing else
             "its rank and tune results are keyed otherwise")
    return (f"{run.meta_path} was written by an older hubensemble ({written or 'unknown'}): "
            f"{lacks}, so this version cannot tell whether they are what this fit would "
            f"make; {_new_or_restart('to discard the old results')}")


def _catalogue_changed(run, previous: dict, fingerprints: dict, specs) -> bool:
    """Whether the catalogue `specs` (its `fingerprints`: "catalogue", "entries") differs
    from the one `run`'s last fit (`previous`, run.json's "fit") recorded: another set of
    names and handles, or an entry edited in place (`_entries_changed`)."""
    return ((previous.get("fingerprints") or {}).get("catalogue") != fingerprints["catalogue"]
            or _entries_changed(run, previous, fingerprints, specs))


def _entries_changed(run, previous: dict, fingerprints: dict, specs) -> bool:
    """Whether an entry of the catalogue `specs` changed in a field that changes what its
    module computes (every field but rank.pool.DESCRIPTIVE_FIELDS) since the fit `previous`
    (run.json's "fit"), its names and handles the same: by the fit's recorded
    fingerprints["entries"] (`rank.ranking.catalogue_entries_fingerprint`), or, in a record
    written before fit recorded it, by ranking.json's per-entry digests (its "catalogue"
    "entries"); False when neither is there (such a run resumes as before). The (name,
    handle) fingerprint alone let fit reuse every stage after `value_range: [-1, 1]` was
    added to an entry (a new-user check). Where a fingerprint or digest differs, the entries
    run.json records ("modules") are compared field by field (`rank.pool.entry_changes`, the
    rule `rank` keeps for tuned candidates): an `output_dim` equal to the width the ranking
    measured declares it only, so is no change; an entry not recorded is one."""
    from hubensemble.rank import load_ranking
    from hubensemble.rank.ranking import catalogue_record

    recorded = (previous.get("fingerprints") or {}).get("entries")
    if recorded is not None:
        if recorded == fingerprints.get("entries"):
            return False
        return _fields_changed(run, specs, [s.name for s in specs])
    try:
        was = load_ranking(run.path).catalogue if run.ranking_json.exists() else None
    except (RunError, OSError, ValueError):
        return False  # a damaged ranking.json is ranked again by the rank stage
    entries = was.get("entries") if isinstance(was, dict) else None
    if not isinstance(entries, dict):
        return False
    now = catalogue_record(specs)["entries"]
    if set(entries) != set(now):
        return True
    # A digest may differ only because the version that wrote it knew fewer fields: a module
    # run.json records ("modules", as that version wrote it) is compared field by field.
    return _fields_changed(run, specs, [n for n in now if entries[n] != now[n]])


def _fields_changed(run, specs, names) -> bool:
    """Whether an entry of `specs` named in `names` differs from run.json's record of it
    ("modules") in a field that changes what it computes (`rank.pool.entry_changes`, with
    the widths `run`'s ranking measured); True for one not recorded."""
    from hubensemble.rank.pool import entry_changes, ranked_widths

    recorded = run.meta().get("modules")
    recorded = recorded if isinstance(recorded, dict) else {}
    widths = ranked_widths(run) if names else {}
    specs_now = {s.name: s.to_json() for s in specs}
    return any(not isinstance(recorded.get(n), dict)
               or entry_changes(recorded[n], specs_now[n], widths.get(n))
               for n in names)


def _catalogue_change(run, specs, meta: dict, located: bool = False) -> str:
    """"catalogue (what changed, per module)" from ranking.json's record of the catalogue
    (`catalogue_changes`), or "catalogue" when there is no readable ranking or record. An
    `output_dim` equal to the width the ranking measured is no change here either
    (`rank.pool.as_recorded_widths`, as `_entries_changed` decides): it was named beside a
    real edit ("m0's output_dim null -> 6; m1's value_range …"). `located`: the modules may
    be located (TensorFlow is loaded): a handle change to the files of another module says so
    (`modulemoves.other_modules`: "m0's handle A -> B: the files at B are another module
    (…), not m0 moved"; said as any handle change before 2026-12-08)."""
    from hubensemble.rank import load_ranking
    from hubensemble.rank.pool import as_recorded_widths, ranked_widths

    try:
        ranking = load_ranking(run.path)
    except (RunError, OSError, ValueError):
        return "catalogue"
    recorded = meta.get("modules")
    recorded = recorded if isinstance(recorded, dict) else {}
    widths = ranked_widths(run)
    changed = catalogue_changes(ranking.catalogue, as_recorded_widths(specs, recorded, widths),
                                recorded, widths)
    if located and changed:
        from hubensemble.modulemoves import other_modules

        others = other_modules(run, specs, meta)
        changed = [next((f"{c}: {others[n]}" for n in others if c.startswith(f"{n}'s handle ")),
                        c) for c in changed]
    return f"catalogue ({'; '.join(changed)})" if changed else "catalogue"


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


def check_inputs(run, fingerprints, keys, options, *, restart, specs=(), cache_dir=None,
                 data=(None, None), progress=False):
    """Before fit runs a stage in `run`: with `restart`, clears its results (`clear_run`);
    else refuses, with RunError naming each change and the way on, a run fitted before with
    another catalogue, data (`data`: (task, data_args) loaded now) or rank and tune options
    (`keys`, from `fingerprints` and `options`), or whose ranked modules' files changed;
    clears a run whose earlier fit finished no stage; and takes over a ranking the stage
    commands wrote (`_go_on_from_rank`)."""
    if restart:
        # Before run.json is read: --restart is the way out of a damaged one (Run.meta says so).
        if run.holds_results():
            log.info("--restart: clearing %s", escaped(run.path))
            clear_run(run)
        return
    meta = run.meta()
    previous = fit_record(run, meta)
    if not previous:
        if run.ranking_json.exists() or run.candidates.exists():
            _go_on_from_rank(run, fingerprints, keys, options, specs=specs, cache_dir=cache_dir,
                             progress=progress)
        return
    meta = _keyed_as_fitted(run, meta, previous, fingerprints, keys, options, specs)
    if (previous.get("fingerprints") or {}).get("catalogue") == fingerprints["catalogue"]:
        _say_gone(run, specs, meta)
    changed = [what for what in ("catalogue", "data") if (
        _catalogue_changed(run, previous, fingerprints, specs) if what == "catalogue"
        else previous.get("fingerprints", {}).get(what) != fingerprints[what])]
    if "data" in changed and data[0] is not None:
        changed[changed.index("data")] = _data_change(  # a damaged record: refused, named
            run.data_section("args", "task", meta=meta), *data, run=run)
    if "catalogue" in changed:
        changed[changed.index("catalogue")] = _catalogue_change(run, specs, meta, located=True)
    if not changed and not same_key(previous.get("keys", {}).get("tune"), keys["tune"]):
        # Name the options, so that a user who meant to resume can pass the old values.
        named = _changed_options(previous.get("options") or {}, options)
        if not named:
            raise RunError(_older_run(run, meta, options))
        changed = [f"rank or tune options ({'; '.join(named)})"]
        if not _changed_module_files(run, specs, cache_dir):
            # --top-k alone: the ranking is selected again, the candidates still planned kept.
            from hubensemble.reselect import top_k_change

            went_on = top_k_change(run, previous, fingerprints, keys, options,
                                   progress=progress)
            if isinstance(went_on, str):
                raise RunError(f"{went_on} ({escaped(run.path)})")
            if went_on:
                return
    if not changed:
        changed = _changed_module_files(run, specs, cache_dir)
    if changed and not (meta.get("stages") or run.ranking_json.exists()
                        or run.candidates.exists()):
        # The fit before finished nothing (e.g. no module could be ranked, and its error said
        # to fix the catalogue and run the same command again): nothing to keep or discard.
        log.info("the %s changed since %s was fitted, but that fit finished no stage: "
                 "starting over", " and ".join(changed), escaped(run.path))
        clear_run(run)
    elif changed:
        raise RunError(f"the {' and '.join(changed)} changed since {_fitted(run, meta)}; "
                       f"{_new_or_restart('to discard the old results')}")


def _keyed_as_fitted(run, meta: dict, previous: dict, fingerprints: dict, keys: dict, options,
                     specs) -> dict:
    """run.json (`meta`, as read again when changed) after the modules of `specs` that moved
    since `run` was fitted, the same module at a new handle (`modulemoves.find_moves`: the
    files' content fingerprint), are recorded there (`modulemoves.record_moves`, said in one
    line each). When the catalogue then keyed as the run keyed it (`modulemoves.keyed_specs`:
    a moved module's first handle) has the fit's recorded fingerprint (`previous`: run.json's
    "fit"), `fingerprints` ("catalogue", "entries") and `keys` (`stagerecords.stage_keys` of
    them, the data's and `options`) are set to those, in place, so every stage is reused and
    fit records them again; a catalogue that differs otherwise (a different module at the
    new handle, another entry) is left to the refusal. User 479: a module folder renamed and
    the catalogue pointed at it was refused as a changed catalogue."""
    from hubensemble.modulemoves import MOVED, find_moves, keyed_specs, record_moves
    from hubensemble.rank.ranking import catalogue_entries_fingerprint, catalogue_fingerprint
    from hubensemble.stagerecords import stage_keys

    recorded = previous.get("fingerprints") or {}
    if not specs or recorded.get("catalogue") in (None, fingerprints["catalogue"]):
        return meta
    moves = find_moves(run, specs, meta)
    after = dict(meta)
    if moves:  # run.json as record_moves will write it
        by_name = {s.name: s for s in specs}
        after["modules"] = {**meta["modules"],
                            **{m.name: by_name[m.name].to_json() for m in moves}}
        after[MOVED] = {m.name: m.was for m in moves} | (
            meta.get(MOVED) if isinstance(meta.get(MOVED), dict) else {})
    keyed = keyed_specs(specs, after)
    prints = {"catalogue": catalogue_fingerprint(keyed),
              "entries": catalogue_entries_fingerprint(keyed)}
    if prints["catalogue"] != recorded.get("catalogue"):
        return meta  # changed otherwise: refused, each change named
    if moves:
        record_moves(run, moves, specs)
        meta = run.meta()
    fingerprints.update(prints)
    keys.update(stage_keys(prints["catalogue"], fingerprints["data"], options))
    return meta


def _refuse_changed_catalogue(run, meta: dict, previous: dict, specs) -> None:
    """RunError, as `check_inputs` words it ("the catalogue (m0's handle A -> B) changed since
    RUN was fitted; use a new --out folder, or pass --restart …"), when the catalogue `specs`
    differs from the one `run`'s last fit (`previous`) recorded even with every entry that
    may be its module moved (`modulemoves.as_if_moved`: judged by content after the data
    loads, `_keyed_as_fitted`) taken as moved: said before TensorFlow's import and the data's
    load (user 479: after 50 s)."""
    from hubensemble.modulemoves import as_if_moved
    from hubensemble.rank.ranking import catalogue_entries_fingerprint, catalogue_fingerprint

    keyed = as_if_moved(specs, meta)
    prints = {"catalogue": catalogue_fingerprint(keyed),
              "entries": catalogue_entries_fingerprint(keyed)}
    if _catalogue_changed(run, previous, prints, keyed):
        raise RunError(f"the {_catalogue_change(run, specs, meta)} changed since "
                       f"{_fitted(run, meta)}; {_new_or_restart('to discard the old results')}")


def _say_gone(run, specs, meta: dict) -> None:
    """Warns, before fit reuses the stages of `run`, of each module of the catalogue `specs`
    whose run.json entry (`meta`'s "modules") is a local path with nothing there
    (`catalogue_here.missing_here`, recorded=True: put it back, or point the catalogue at its
    new place): fit reused every stage without a word of it, and a later export failed
    after TensorFlow and the data had loaded (user 479). A damaged entry: the stage's words."""
    from hubensemble.catalogue_here import missing_here
    from hubensemble.rerun import fit_again
    from hubensemble.runspecs import module_spec, readable_entries

    entries = readable_entries(meta.get("modules"))
    try:
        recorded = [module_spec(run, s.name, modules=entries) for s in specs
                    if s.name in entries]
    except RunError:
        return
    for spec, error in missing_here(recorded, recorded=True,
                                    fit_again=fit_again(run.path, meta)):
        log.warning("module %r cannot load from where %s ranked it: %s; fit reuses the stages "
                    "done before, and a stage that loads it again fails until then", spec.name,
                    escaped(run.path), error.message)


def refuse_changed_options(run, options, *, restart, data_args=None, specs=None) -> None:
    """Before fit reads its data: RunError, as `check_inputs` words it ("the rank or tune
    options (--profile quick -> cpu) changed since RUN was fitted; use a new --out folder, or
    pass --restart …"), when `run`'s last fit recorded other rank or tune options (`options`:
    a pipeline.FitOptions) than these, judged by the fit's own key (stagerecords.stage_keys
    of its recorded catalogue and data fingerprints and these options, against its recorded
    tune key: `stagerecords.same_key`, so threshold=0 and --threshold 0 are the same). That
    refusal came only after the data had loaded (minutes for a large folder), to say what
    run.json alone says. Nothing happens with `restart`, for a folder
    no fit recorded or whose fit finished nothing, for --top-k alone (`reselect`'s case) or
    a record that names no changed option (`_older_run`'s): `check_inputs` decides those
    after the data loads, as it does a catalogue or data change. Reads run.json only (no
    lock, no write); RunError for a run.json that is not a JSON object (`Run.meta`). With
    `data_args` (the DataArgs of fit's data spec; `specs`: its catalogue entries), data
    options that surely give other data are refused first, in the words of the load's
    refusal (`refuse_other_data`). With options only --top-k changed, a smaller --top-k that
    drops modules whose candidates RUN/candidates holds is refused as `check_inputs` refuses
    it after the load (`reselect.dropped_refusal`: ranking.json and the candidates' records
    say it). fit's and demo's commands call this before TensorFlow loads, with the DataArgs
    and catalogue their flags give."""
    from hubensemble.stagerecords import stage_keys

    if data_args is not None:
        refuse_other_data(run, data_args, restart=restart, specs=specs)
    if restart or not run.meta_path.is_file():
        return
    meta = run.meta()
    previous = fit_record(run, meta)
    # budget=8 where it fitted budget=None, which its sweep resolved to 8: the same (fit holds
    # them so too, pipeline.fit), not "changed" with restart=True to discard the same trials.
    options = as_fitted(options, meta)
    prints, recorded = previous.get("fingerprints"), (previous.get("keys") or {}).get("tune")
    if not (isinstance(prints, dict) and recorded and "catalogue" in prints and "data" in prints
            and (meta.get("stages") or run.ranking_json.exists() or run.candidates.exists())):
        return
    if specs:
        _refuse_changed_catalogue(run, meta, previous, specs)
    if same_key(recorded, stage_keys(prints["catalogue"], prints["data"], options)["tune"]):
        return
    top_k = (previous.get("options") or {}).get("top_k")
    if isinstance(top_k, int) and same_key(recorded, stage_keys(
            prints["catalogue"], prints["data"],
            dataclasses.replace(options, top_k=top_k))["tune"]):
        from hubensemble.reselect import dropped_refusal

        refused = dropped_refusal(run, previous, options)  # as check_inputs says it
        if refused:
            raise RunError(f"{refused} ({escaped(run.path)})")
        return  # --top-k alone: the ranking is selected again (check_inputs)
    named = _changed_options(previous.get("options") or {}, options)
    if named:
        raise RunError(f"the rank or tune options ({'; '.join(named)}) changed since "
                       f"{_fitted(run, meta)}; "
                       f"{_new_or_restart('to discard the old results')}"
                       f"{_add_sweep_way(run, previous.get('options') or {}, options)}")


#: The options of a tune call that plan its sweep, as `sweepstate` names a sweep's command
#: (its record's): what `_add_sweep_way`'s tune command passes on of fit's.
_SWEEP_PLAN = ("sweep", "budget", "seed", "batchnorm", "head_init", "keep_weights")


def _add_sweep_way(run, recorded: dict, options) -> str:
    """The way on, after `refuse_changed_options`' "use a new --out folder, or pass --restart
    …", that keeps what `run` holds when fit's --sweep differs from the one it was fitted
    with (`recorded`: run.json's fit.options; `options`: the FitOptions given now): "; or, to
    keep its ranking and its probe candidates and add the hyper sweep's beside them, run
    `hubensemble tune --run RUN --sweep hyper`, then `hubensemble ensemble --run RUN` and
    `hubensemble export --run RUN` (the ensemble selects from every sweep's candidates)"
    (from Python the run_tune, run_ensemble and run_export calls), the tune command with
    fit's --budget, --seed, --batchnorm and --head-init when not at their defaults. When
    other options changed too, what that way cannot keep: the rank options and --profile
    (tune refuses a profile other than the candidates'), the run's as they were, named with
    their values. "" when the sweep is the same. It said only the new folder or --restart,
    both of which discard the candidates (README: a sweep is added to a run by `tune`)."""
    from hubensemble.rerun import option_flags, option_keywords
    from hubensemble.sweepwords import ensemble_options

    old, new = recorded.get("sweep"), getattr(options, "sweep", None)
    if not isinstance(old, str) or not isinstance(new, str) or old == new:
        return ""
    given = {n: getattr(options, n) for n in _SWEEP_PLAN if hasattr(options, n)}
    table = [o for o in option_table.options_for(command="tune") if o.name in given]
    # The new sweep always: tune without --sweep resumes the run's own, so at fit's default
    # (`default`) the command left it out and added nothing ("all 8 … reused").
    sweep = option_table.get("sweep")
    rest = [o for o in table if o.name != "sweep"]
    tune = command_words(
        "tune", run.path,
        flags=" ".join(filter(None, (f"{sweep.cli_flags[0]} {new}", option_flags(given, rest)))),
        keywords=", ".join(filter(None, (f"sweep={new!r}", option_keywords(given, rest)))))
    flags, keywords = ensemble_options(run.path)
    ensemble = command_words("ensemble", run.path, flags=flags, keywords=keywords)
    export = run.export_words()
    text = (f"; or, to keep its ranking and its {old} candidates and add the {new} sweep's "
            f"beside them, run {tune}, then {ensemble} and {export} (the ensemble selects "
            "from every sweep's candidates)")
    others = [w for w in _changed_options(recorded, dataclasses.replace(options, sweep=old))
              if not any(w.startswith(f"{o.cli_flags[0]} ") or w.startswith(f"{o.name}=")
                         for o in table)]
    if others:
        text += (f"; that way keeps the run's other options as they were: not "
                 f"{'; '.join(others)} (tune takes the run's ranking and profile)")
    return text


def _go_on_from_rank(run, fingerprints, keys, options, *, specs, cache_dir, progress):
    """A folder the stage commands made, no fit. A ranking alone (`hubensemble rank`: rank,
    look at the ranking, then fit) that this fit would write the same (`ranking_changes`,
    module files unchanged) becomes fit's rank stage, reused, and the log and (with
    `progress`) the terminal say so (`terminal.say`): the log alone left the terminal silent
    until the summary's "rank … (earlier run, reused)" (a new-user check). Other data is left
    to Run.attach_task's refusal, which names what differs. RunError naming what differs, or
    the later stages' results there with the commands that go on from them."""
    from hubensemble.rank import load_ranking
    from hubensemble.rank.reuse import ranking_changes
    from hubensemble.sweepwords import ensemble_words, sweep_command
    from hubensemble.terminal import say

    later = _later_results(run)
    if not later and not run.ranking_json.exists():
        return  # an empty candidates/: nothing to go on from, or to lose
    if later:
        raise RunError(
            f"{run.path} holds results of stage commands run outside `fit` "
            f"({', '.join(later)}): fit goes on from a ranking alone, not from a sweep or "
            f"ensemble it did not run. Go on with the "
            f"{option_word('stage commands', 'stage functions')} "
            f"({sweep_command(run.path)}, then {ensemble_words(run.path)} and "
            f"{run.export_words()}), "
            f"{_new_or_restart('to discard them')}")
    ranking = load_ranking(run.path)
    if ranking.data_fingerprint != fingerprints["data"]:
        return
    from hubensemble.rank.pool import as_recorded_widths, ranked_widths

    recorded = run.meta().get("modules")
    recorded = recorded if isinstance(recorded, dict) else None
    # An output_dim equal to the ranked width is no change (`rank.pool.entry_changes`).
    ranked = as_recorded_widths(specs, recorded, ranked_widths(run))
    changed = ranking_changes(ranking, ranked, **option_table.kwargs_for("rank", options),
                              recorded=recorded)
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
        f"{escaped(run.ranking_json)} ({counted(len(ranking.ok_rows), 'module')} ranked by "
        f"{ranking.metric} at {option_word('--profile', 'profile')} {ranking.profile}; "
        f"selected: {', '.join(ranking.selected) or 'none'}): the same catalogue, data and "
        f"rank options as this fit, so it is not ranked again; pass "
        f"{option_word('--restart', 'restart=True')} to rank again from scratch")


def _later_results(run) -> list[str]:
    """The entries of `run` that stages after rank write (a non-empty candidates/, cost.json,
    ensemble.json, export/): a folder holding them, without a fit's record, is refused by
    `_go_on_from_rank`."""
    from hubensemble.formats import CANDIDATES_DIR, COST_FILE, ENSEMBLE_FILE, EXPORT_DIR

    return [n for n in (CANDIDATES_DIR, COST_FILE, ENSEMBLE_FILE, EXPORT_DIR)
            if (run.path / n).exists() and not (n == CANDIDATES_DIR and not any(
                run.candidates.iterdir()))]


def refuse_other_data(run, data_args, *, restart, specs=None) -> None:
    """Before TensorFlow and the data load (`refuse_changed_options`: fit's and demo's
    command line, and `pipeline.fit` for a data spec): RunError in the words fit says once
    the data is loaded, when `run`'s run.json records data loaded with options
    (`data_args`: a DataArgs; the data spec, --data-seed, --split, …:
    `datachange.compare`) that surely give other data (`datachange.surely_other_data`). For a
    fitted run (run.json's "fit", with results): "the data (--data sklearn:digits ->
    npz:/x.npz) changed since RUN was fitted; use a new --out folder, or pass --restart …"
    (`check_inputs`; the catalogue's change first when `specs`, the catalogue given now,
    differs from the fit's too); for a run of `rank` alone: `datachange.other_data`'s "RUN
    holds a run on other data: …" (`Run.attach_task`). It took 7-24 s and ~700 MB of
    TensorFlow and the data first. Nothing happens with `restart`, for a folder without
    run.json, a record without data options (an older hubensemble's), the same options, a
    fit that finished nothing (it starts over) or stage results without a fit
    (`_go_on_from_rank` refuses them first, after the load). Reads run.json, ranking.json
    and the candidates' names only; RunError for a damaged run.json (`Run.meta`,
    `Run.data_section`)."""
    from hubensemble.datachange import DataRecord, compare, other_data, surely_other_data
    from hubensemble.rerun import start_again

    if restart or not run.meta_path.is_file():
        return
    meta = run.meta()
    recorded = run.data_section(meta=meta)
    if not isinstance(recorded.get("args"), dict):
        return  # no data yet, or an older hubensemble's record: the load compares the data
    change = compare(DataRecord(args=recorded["args"], task={}, labels={}, keys=None),
                     DataRecord(args=data_args.to_json(), task={}, labels={}, keys=None))
    if not surely_other_data(change, data_args.spec):
        return
    previous = fit_record(run, meta)
    if not previous:
        if _later_results(run):
            return  # refused first, as results fit did not make (`_go_on_from_rank`)
        raise RunError(other_data(
            run.path, change, None if change.other_source else f"{data_args.spec} as loaded now",
            again=start_again(run.path, meta, "fit", args=data_args.to_json()),
            command="fit"))
    if not (meta.get("stages") or run.ranking_json.exists() or run.candidates.exists()):
        return  # that fit finished nothing: this one starts over (`check_inputs`)
    changed = [f"data ({'; '.join(change.items())})"]
    if specs is not None:
        from hubensemble.modulemoves import as_if_moved
        from hubensemble.rank.ranking import (catalogue_entries_fingerprint,
                                              catalogue_fingerprint)

        keyed = as_if_moved(specs, meta)  # a module moved, the same files: no change
        prints = {"catalogue": catalogue_fingerprint(keyed),
                  "entries": catalogue_entries_fingerprint(keyed)}
        if _catalogue_changed(run, previous, prints, keyed):
            changed.insert(0, _catalogue_change(run, specs, meta))
    raise RunError(f"the {' and '.join(changed)} changed since {_fitted(run, meta)}; "
                   f"{_new_or_restart('to discard the old results')}")


def fit_record(run, meta: dict) -> dict:
    """run.json's "fit" (`meta`: run `run`'s run.json object), the record of its last fit
    ({} when it has none). RunError naming run.json, the field and the way on (restore it,
    or a new folder or --restart) when it, or its "options", "fingerprints" or "keys", was
    edited by hand into another type: fit cannot tell what changed since, and stopped with
    "AttributeError: 'str' object has no attribute 'get'"."""
    previous = meta.get("fit")
    if previous is None:
        return {}
    fields = {'"fit"': previous} if not isinstance(previous, dict) else {
        f'"fit" -> "{k}"': previous[k] for k in ("options", "fingerprints", "keys")
        if previous.get(k) is not None and not isinstance(previous[k], dict)}
    for field, value in fields.items():
        shown = f"{type(value).__name__} {value!r}"[:80]
        raise RunError(f"{run.meta_path}: its {field} is {shown}, not the record fit writes "
                       "(edited by hand?), so fit cannot tell what changed since; restore "
                       f"run.json from a copy, or {_new_or_restart('to discard the old results')}")
    return previous


def _fitted(run, meta: dict) -> str:
    """"RUN was fitted" when run.json (`meta`) records fit's tune stage done, else what the
    run holds from the fit that stopped before its sweep finished: "RUN's last fit, which
    stopped before its sweep finished (it holds a ranking and no candidates)". "since RUN
    was fitted" was said of a run whose fit was refused before its sweep (a --max-gflops no
    module meets), which holds a ranking alone."""
    from hubensemble.candidate import TRIAL_FILE
    from hubensemble.formats import CANDIDATES_DIR

    stages = meta.get("stages") if isinstance(meta.get("stages"), dict) else {}
    tuned = stages.get("tune") if isinstance(stages.get("tune"), dict) else {}
    if tuned.get("done"):
        return f"{run.path} was fitted"
    folder = run.path / CANDIDATES_DIR
    trials = sum(1 for p in folder.iterdir() if (p / TRIAL_FILE).is_file()
                 ) if folder.is_dir() else 0
    held = " and ".join(filter(None, (
        "a ranking" if run.ranking_json.exists() else "no ranking",
        counted(trials, "trained candidate") if trials else "no candidates")))
    return (f"{run.path}'s last fit, which stopped before its sweep finished (the run holds "
            f"{held})")


def _new_or_restart(then: str) -> str:
    """"use a new --out folder, or pass --restart `then`" in the caller's words (from Python,
    "out folder", "restart=True": `lockwords.option_word`): the way on of a fit refused
    because its folder holds results it would not go on from."""
    return (f"use a new {option_word('--out', 'out')} folder, or pass "
            f"{option_word('--restart', 'restart=True')} {then}")
