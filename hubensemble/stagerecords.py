"""The record of each `fit` stage in run.json ("stages"): its key, what it read and wrote
(digests), and whether a recorded stage can be reused (`stage_done`) or was damaged since.

fit reuses a stage only while its key (the options and inputs it depends on; or, for a stage
whose inputs' digests are compared, `read_keys`: the options it reads) and the results it read
are unchanged (`STAGE_INPUTS`; the export's: ensemble.json, cost.json and its members'
candidate files); a result another command rewrote, or one damaged in place, makes that
stage and every stage after it run again (pipeline._run_stages). What no later stage reads
(`BOOKKEEPING`: timings, the writer's version) is left out of the comparison; a result that
differs from its stage's record only in how, when or by which version it was made
(`PROVENANCE`) leaves that stage done too.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from hubensemble.fileio import json_kind
from hubensemble.text import absolute, json_shown

log = logging.getLogger("hubensemble.pipeline")  # the lines fit has always said


def digest(obj) -> str:
    """The sha256 (hex) of `obj` as canonical JSON (sorted keys; other types by str)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class StageKey(str):
    """A stage key (`stage_keys`, `read_keys`: a sha256, hex) that also holds `older`: the
    keys a hubensemble before typed keys made of the same option values (a float option's
    whole number digested as the int a Python caller typed: threshold=0), which `same_key`
    accepts as this one. Written to run.json as the plain string it is."""

    older: frozenset = frozenset()

    def __new__(cls, key: str, older=()):
        made = super().__new__(cls, key)
        made.older = frozenset(older) - {key}
        return made


def same_key(recorded, key) -> bool:
    """Whether `recorded` (a stage's key or reads in run.json, any JSON value) is `key` (a
    `StageKey`, or a plain str compared as such): the same digest, or one of `key.older`,
    the digest an older hubensemble made of the same values typed otherwise (`_typings`). The
    one rule by which fit (`stage_done`, `resume`, `reselect`) matches recorded keys: a run
    whose stages were keyed from threshold=0 (the int) stays "done before, reused" for
    fit(threshold=0) and `fit --threshold 0` alike, where keying the value as its float
    alone would have run every stage again."""
    return isinstance(recorded, str) and (recorded == key or recorded in getattr(
        key, "older", ()))


def same_keys(recorded, keys: dict) -> bool:
    """Whether `recorded` (run.json's fit.keys) holds the stages of `keys` (`stage_keys`) and
    no other, each the same key (`same_key`)."""
    return (isinstance(recorded, dict) and set(recorded) == set(keys)
            and all(same_key(recorded[s], k) for s, k in keys.items()))


def _typings(options) -> list[dict]:
    """{option: value} of `options`' float-typed fields (hubensemble.options declares the
    type) as they are keyed: first each as a float, its declared type, so threshold=0 from
    Python keys as `--threshold 0` (0.0) does; then every other typing of the whole numbers
    among them (0 as the int given, 0.0 as the int 0), as a hubensemble before this rule
    digested each value as it was given. The float 0.0 and the int 0 keyed the stages apart,
    and `fit --threshold 0` refused the run fit(threshold=0) made ("written by an older
    hubensemble"). A float option at None, or not a whole number, has its one typing."""
    import itertools

    from hubensemble import options as option_table

    choices = []
    for o in option_table.options_for(record="fit"):
        value = getattr(options, o.name, None)
        if o.type is not float or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        whole = value if isinstance(value, int) else int(value) if value.is_integer() else None
        choices.append([(o.name, float(value))] + ([] if whole is None else [(o.name, whole)]))
    return [dict(c) for c in itertools.product(*choices)]


def _chained(start, options, stages, typed: dict) -> dict[str, str]:
    """{stage: key} of `stages` chained from `start`: each the digest of the key before, the
    stage and its options (`options.for_stage`), the float options' values as `typed`."""
    keys, upstream = {}, start
    for stage in stages:
        values = options.for_stage(stage)
        upstream = digest([upstream, stage, {
            f: typed[f] if f in typed else v for f, v in values.items()}])
        keys[stage] = upstream
    return keys


def _keys(start, options, stages) -> dict[str, StageKey]:
    """`_chained` keys of the declared typing (`_typings`' first), each a StageKey holding the
    keys of the other typings as `older`."""
    made = [_chained(start, options, stages, typed) for typed in _typings(options)]
    return {s: StageKey(made[0][s], (m[s] for m in made[1:])) for s in stages}


def stage_keys(catalogue_fp, data_fp, options) -> dict[str, "StageKey"]:
    """A key per stage (`options.STAGES`, in order) that changes when anything
    the stage's result depends on changes: the catalogue's and data's fingerprints, then each
    stage's options (`options`: a pipeline.FitOptions, its `for_stage`) chained, so a stage's
    key changes with every stage's before it. Each value is keyed as its declared type
    (`_typings`: threshold=0 as 0.0); each key is a `StageKey`, compared with a recorded one
    by `same_key`. `fit`'s keys (pipeline), and what `reselect.top_k_change` recomputes with
    the recorded --top-k."""
    from hubensemble.options import STAGES

    return _keys(digest([catalogue_fp, data_fp]), options, STAGES)


def read_keys(catalogue_fp, data_fp, options) -> dict[str, "StageKey"]:
    """A key per stage (`options.STAGES`) of the options it reads: as `stage_keys`, but rank's
    options (metric, k, top_k, threshold, max_k, greedy) left out of every stage after rank.
    Their whole effect on those stages goes through ranking.json, which tune alone reads
    (`STAGE_INPUTS`; the ensemble, export and evaluation read neither the ranking nor a rank
    option), and `stage_done` compares its digest: a --top-k change made the ensemble, the
    export and the evaluation stale by `stage_keys` alone, and fit exported a byte-identical
    ensemble.json again (100 s and 114 s). The options of tune and after stay
    chained: a result's digest does not hold all they change (the export's digest is its
    metadata asset). Recorded as a stage's "reads" (`mark`), beside its key."""
    from hubensemble.options import STAGES

    rank = stage_keys(catalogue_fp, data_fp, options)["rank"]
    return {"rank": rank, **_keys(digest(["rank's options left out", catalogue_fp, data_fp]),
                                  options, STAGES[1:])}


#: The stages whose results each stage reads. A stage is reused only while their results are
#: the ones it read: `hubensemble ensemble` (or tune, export, ...) run by hand on the run
#: folder between two fits rewrites a result, and every stage after it must run again.
#: "members" is no stage: the candidate files of ensemble.json's members (`members_digest`),
#: which the export rebuilds its members from, as it reads cost.json for its cost record.
#: Compared by ensemble.json alone, a member's candidate rewritten under the same trial name
#: (by hand, or a tune run again) kept the old export, as did a cost.json recounted with
#: other figures (ensemble.json's "cost" is BOOKKEEPING for the export).
STAGE_INPUTS = {"tune": ("rank",), "cost": ("tune",), "ensemble": ("tune", "cost"),
                "export": ("ensemble", "cost", "members"), "evaluate": ("export",)}


def file_digest(path) -> str | None:
    """The sha256 (hex) of the file at `path`, or None when there is none."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None


def members_digest(run) -> dict[str, str] | None:
    """{trial: sha256 (hex)} of what the export reads of each member RUN/ensemble.json names
    (`export.memberplan._plan_member`): its trial.json record, as `candidates_digest` reads it,
    and its weights file's sha256 (`weightsfile.file_digest`, remembered per file and
    process: the ensemble stage has hashed it when it ran in this fit); a record that names
    no weights file (the export retrains it) by its record alone. A candidate folder or file
    that is gone or unreadable digests as such (None). None when ensemble.json's reader
    (`ensemblefile.read_ensemble`) refuses it (missing, unreadable, damaged: said in its
    words, `_members_words`) or it lists no members."""
    from hubensemble import weightsfile
    from hubensemble.candidate import TRIAL_FILE
    from hubensemble.fileio import read_json

    members = _members(run)
    if members is None:
        return None
    found = {}
    for member in members:
        trial = str(member["trial"])  # the reader's check: a folder name of candidates/
        folder = run.candidates / trial
        try:
            record = read_json(folder / TRIAL_FILE)
        except (OSError, ValueError):
            record = None
        name = record.get("weights") if isinstance(record, dict) else None
        weights = weightsfile.file_digest(folder / name) if isinstance(name, str) else None
        found[trial] = digest([record, weights])
    return found


def _members(run) -> list | None:
    """ensemble.json's members as its one reader (`ensemblefile.read_ensemble`) gives them,
    or None when it refuses the file (missing, unreadable, damaged: `_members_words` says its
    words) or lists none."""
    from hubensemble.ensemblefile import read_ensemble
    from hubensemble.errors import RunError

    try:
        members = read_ensemble(run.path).get("members")
    except RunError:
        return None
    return members if isinstance(members, list) else None


def _refusal(run) -> str | None:
    """The words of ensemble.json's reader when it refuses the file (naming the file, the
    member and the command that writes it again), else None."""
    from hubensemble.ensemblefile import read_ensemble
    from hubensemble.errors import RunError

    try:
        read_ensemble(run.path)
    except RunError as e:
        return str(e)
    return None


#: What in each stage's result file is a record of how, when or by which version it was made,
#: not something a later stage reads: stage -> the paths of those fields in the file's JSON
#: object ("*": every item of a list). The one rule of which changes leave the stages reading
#: a result done (`view_digest`, `stage_done`); a field a later stage starts to read leaves
#: this table. Why each is here:
#: * ranking.json's rows' "seconds" and "cache_hit": tune reads the selection and the rows'
#:   scores, not how long each module took or whether its embeddings came from the cache (a
#:   `hubensemble rank` again by hand made fit's tune run again).
#: * cost.json's "written_by" and "count_version": the ensemble and the export read its
#:   figures (`cost.records.figures_digest`), not which hubensemble counted them or under
#:   which rule (fit's cost stage counts a file of an older rule again itself,
#:   pipeline._costs_outdated): a `hubensemble cost` by hand with a newer hubensemble, the
#:   same figures, made fit redo the ensemble, the export and the evaluation.
#: * ensemble.json's "cost": the export counts its members' costs from cost.json (a run whose
#:   ensemble.json had none had its export made again once, when fit's cost stage wrote
#:   cost.json and the ensemble stage the same ensemble with its costs).
#: PROVENANCE: those of them that say only how, when or by which version a result was made;
#: a result that differs from the one its own stage recorded in these alone is still that
#: stage's, which is reused (`stage_done`): a `hubensemble cost` by hand with a newer
#: hubensemble, the same figures, ran fit's cost stage again (and `hubensemble rank` again
#: by hand, fit's rank; a rank row's "memory", the peak its embedding measured, differs from
#: run to run as its seconds do). ensemble.json's "cost" is not: the report reads it, and a
#: stage run again writes it from cost.json.
PROVENANCE = {"rank": (("modules", "*", "seconds"), ("modules", "*", "cache_hit"),
                       ("modules", "*", "memory")),  # each embedding's peak: measured
              "cost": (("written_by",), ("count_version",))}
BOOKKEEPING = {**PROVENANCE, "ensemble": (("cost",),)}


def _without(obj, path):
    """`obj` (JSON) without the field at `path` (keys; "*": each item of a list), the order
    of what is left kept; `obj` itself where the path does not reach."""
    head, rest = path[0], path[1:]
    if head == "*":
        return [_without(x, rest) for x in obj] if isinstance(obj, list) and rest else obj
    if not isinstance(obj, dict) or head not in obj:
        return obj
    if not rest:
        return {k: v for k, v in obj.items() if k != head}
    return {**obj, head: _without(obj[head], rest)}


def without_bookkeeping(stage, doc, table=None):
    """`stage`'s result `doc` (its file's JSON object) without its BOOKKEEPING fields (or
    those `table`, e.g. PROVENANCE, names)."""
    for path in (BOOKKEEPING if table is None else table).get(stage, ()):
        doc = _without(doc, path)
    return doc


def view_digest(stage, path, *, own=False) -> str | None:
    """The digest of what the stages after `stage` read of its result file `path` (`own`:
    what its own stage compares, without PROVENANCE fields alone): the sha256 of the file as
    `fileio.atomic_write_json` writes it, without its BOOKKEEPING fields (so for a file that
    holds none, the file's own digest, `file_digest`, which is what a run recorded before
    these were told apart); `file_digest` for a stage without such fields and for a file
    that is not one JSON object. None when there is no file."""
    table = PROVENANCE if own else BOOKKEEPING
    if stage not in table:
        return file_digest(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        return file_digest(path)
    if not isinstance(doc, dict):
        return file_digest(path)
    text = json.dumps(without_bookkeeping(stage, doc, table), indent=2) + "\n"
    return hashlib.sha256(text.encode()).hexdigest()


def candidates_digest(folder) -> str | None:
    """The sweep's result: every trial.json under candidates/ (names and contents) and what
    is wrong with its files (a probability table damaged since is a change: fit said nothing
    and the ensemble dropped that member; so is a file changed since tune wrote it,
    `Candidate.changed`: a weights file or test table edited or cut short read as "done
    before, reused")."""
    from hubensemble import candidate

    found, _ = candidate.scan(folder)
    if not found:
        return None
    return digest([[c.trial, c.record] + ([c.problems] if c.problems else []) for c in found])


#: (run.json path, field) whose hand-edited value `stage_records` warned of in this process.
_WARNED: set[tuple[str, str]] = set()


def stage_records(meta: dict, run=None) -> dict[str, dict]:
    """run.json's "stages" (`meta`: run.json's object, of run `run`, a rundir.Run, which the
    warning names; None: "run.json") as {stage: its record, a dict}: {} when it records none.
    A value edited by hand into no JSON object (the section, or one stage's record) is not
    read: left out, with a warning (once per process) naming the file and the field, and
    the stage's next run records it anew (a fit runs it again; one run on its own records its
    time). Such a value stopped a fit with "AttributeError: 'str' object has no attribute
    'get'", and a stage run on its own, its work done, with "ValueError: dictionary update
    sequence element #0 …" as it recorded its time."""
    stages = meta.get("stages") if isinstance(meta, dict) else None
    if stages is None:
        return {}
    # Absolute: a run named relative ("run/run.json") read as a path of the cwd only.
    where = str(absolute(run.meta_path)) if run is not None else "run.json"
    bad = {'"stages"': stages} if not isinstance(stages, dict) else {
        f'"stages" -> "{k}"': v for k, v in stages.items() if not isinstance(v, dict)}
    for field, value in bad.items():
        if (where, field) not in _WARNED:
            _WARNED.add((where, field))
            log.warning("%s: its %s is %s, not a JSON object (edited by hand?): not read; the "
                        "stage's next run records it again", where, field,
                        f"{json_kind(value)} ({json_shown(value)})")
    if not isinstance(stages, dict):
        return {}
    # "done" edited into no true/false ("no", 1): read as not done, said once, where a
    # truthy text read as "done before, reused" (every reader goes through here: export,
    # ensemble and cost too, which run no such stage, so the words name what reruns it).
    for k, v in stages.items():
        if isinstance(v, dict) and "done" in v and not isinstance(v["done"], bool) \
                and (where, k) not in _WARNED:
            _WARNED.add((where, k))
            log.warning('%s: its "stages" -> "%s" -> "done" is %s, not true or false (edited '
                        "by hand?): read as not done (a fit runs that stage again)", where, k,
                        f"{json_kind(v['done'])} ({json_shown(v['done'])})")
    return {k: v if isinstance(v.get("done", False), bool) else {**v, "done": False}
            for k, v in stages.items() if isinstance(v, dict)}


def stage_done(run, stage, key, digests=None, ran=(), views=None, reads=None, reselected=(),
               outside=None, redone=None):
    """`stage` finished under `key` (or, for a record with digests compared here, under
    `reads`: its `read_keys` key, of the options it reads itself), its result is still the
    one it wrote, and the results it read are unchanged (`digests`: stage (or "members",
    `STAGE_INPUTS`) -> digest of its result now; a record written before digests were kept
    is trusted as before, as is a result read whose digest the record lacks: recorded by a
    hubensemble before it was compared, e.g. the export's "cost" and "members"). `ran`: the
    stages this fit has just run (their new results are why, not another command);
    `reselected`: those of them whose result this fit selected again instead of running them
    (`reselect.top_k_change`), said as "rank's selection changed above". `outside`: a list
    that gets the candidate folders said as outside fit's plan (`damage`), which fit's tune
    leaves as they are (`pipeline._say_not_redone` then says them no more); `redone`: a list
    that gets the damaged trials of fit's plan said here ("…; running tune again"), which
    fit's tune then leaves out of its own line (`run_tune(said_redone=…)`: said once).
    `views`: result -> its `view_digest` now (for `stage`'s own result, `own=True`); a
    result whose file changed in BOOKKEEPING fields alone (its own: PROVENANCE fields; its
    view is the one recorded, the record's digests' "views", or, for a record without
    views, the file digest recorded) is unchanged for `stage`.

    A record of a hubensemble before bad91fe (2026-12-01) holds no digests: it is trusted
    unless a stage it reads ran again in this fit. Trusting it then (e.g. cost counted
    again under a newer counting rule) kept ensemble.json, the export and robustness.json of
    the old counts beside a new cost.json, where a run recorded since redoes them."""
    record = stage_records(run.meta(), run).get(stage) or {}
    broken = modules_damage(run) if stage == "rank" and record.get("done") else None
    if broken:  # rank's record in run.json, not ranking.json: fit reused it as it was
        log.warning("rank: %s; running rank again, which records the entries anew", broken)
        return False
    # `reads` alone only where the results the stage reads are compared below: a record
    # of a hubensemble before read_keys has no "reads" and is matched by its key as before.
    by_reads = (reads is not None and digests is not None and "digests" in record
                and same_key(record.get("reads"), reads))
    if (not same_key(record.get("key"), key) and not by_reads) or not record.get("done", False):
        return False
    if digests is None:
        return True
    if "digests" not in record:
        rerun = [s for s in STAGE_INPUTS.get(stage, ()) if s in ran]
        if rerun:
            log.info("%s: %s (its record, of an older hubensemble, names no results it "
                     "read); running %s again", stage, _ran_words(rerun, reselected), stage)
        return not rerun
    recorded = record["digests"]
    if not isinstance(recorded, dict):  # a hand edit: an AttributeError traceback below
        from hubensemble.fileio import json_kind

        log.warning('%s: its "stages" -> "%s" -> "digests" is %s, not a JSON object (edited '
                    "by hand?): what %s read is not known; running %s again",
                    run.meta_path.resolve(), stage, json_kind(recorded), stage, stage)
        return False
    seen = recorded.get("views") if isinstance(recorded.get("views"), dict) else {}
    views = views or {}  # (a record's "views" is no stage: never compared below)

    def changed(s):
        if s != stage and s not in recorded:  # not compared when it was recorded: as then
            return False
        return recorded.get(s) != digests[s] and not (
            views.get(s) is not None and views[s] in (seen.get(s), recorded.get(s)))

    stale = [s for s in (stage, *STAGE_INPUTS.get(stage, ())) if changed(s)]
    results = [s for s in stale if s != "members"]  # the stages' results, said below
    # The members' files, said unless another ensemble.json is why they differ.
    members = ([_members_words(run, recorded.get("members"), digests["members"])]
               if "members" in stale and "ensemble" not in stale else [])
    said_redone = []
    damaged = [d for d in (damage(run, s, ran=ran, outside=outside, redone=said_redone)
                           for s in results if s not in ran) if d]
    if redone is not None and damaged:
        redone.extend(said_redone)
    if damaged:  # not another command's doing: say it on the terminal, with what is wrong
        # Every damaged folder outside fit's plan: its tune runs, but not for them (it said
        # "…, then fit again; running tune again", a new user's check).
        left_alone = stage == "tune" and results == ["tune"] and not said_redone and not members
        log.warning("%s: %s; %s", stage, "; ".join(damaged + members),
                    "fit's tune goes on with its own plan's trials" if left_alone
                    else f"running {stage} again")
    elif results and set(results) <= set(ran):
        log.info("%s: %s; running %s again", stage,
                 "; ".join([_ran_words(results, reselected)] + members), stage)
    elif results:
        log.info("%s: the result of %s is not the one fit recorded (another command rewrote "
                 "it since)%s", stage, " and ".join(results), "".join(
                     f"; {w}" for w in members + ([] if stage == "export" else
                                                  [f"running {stage} again"])))
        # (the export: kept if fit's own, else moved aside: said by pipeline._run_stages)
    elif members:  # the same ensemble.json, other files of its members
        log.info("%s: %s; running %s again", stage, members[0], stage)
    return not stale


def modules_damage(run) -> str | None:
    """What is wrong with run.json's "modules" record of run `run` (the catalogue entries rank
    records, read by every stage after it through `runspecs.module_specs`), in that reader's
    words up to its way on (run.json's absolute path, the field, its kind: "RUN/run.json:
    the catalogue entry of module 'm1' is damaged (a JSON number, expected an object)"), or
    None when it reads (or is absent). fit's rank redoes a damaged record, as rank writes
    it; fit said "rank: done before, reused" over an entry edited into a number, and the
    record stayed broken until a stage read that entry."""
    from hubensemble.errors import RunError
    from hubensemble.runspecs import module_specs

    try:
        module_specs(run)
    except RunError as e:
        return str(e).split("; restore run.json", 1)[0]
    except (OSError, ValueError):  # run.json itself: its own readers say it
        return None
    return None


def _ran_words(stages, reselected=()) -> str:
    """"tune and cost ran again above", "rank's selection changed above" (`reselected`)."""
    said = [f"{s}'s selection changed" for s in stages if s in reselected]
    again = [s for s in stages if s not in reselected]
    return " and ".join(said + ([f"{' and '.join(again)} ran again"] if again else [])) + " above"


def _members_words(run, then, now) -> str:
    """Which members' candidate files (`members_digest`: `then` recorded, `now`) differ."""
    from hubensemble.text import escaped

    if not isinstance(now, dict):  # not read: the reader's words name the member, not all
        refused = _refusal(run)
        if refused:
            return f"{refused} (the export reads its members through it)"
    then = then if isinstance(then, dict) else {}
    now = now if isinstance(now, dict) else {}
    names = [t for t in dict.fromkeys([*now, *then]) if then.get(t) != now.get(t)]
    return (f"the candidate files of member{'s' if len(names) > 1 else ''} "
            f"{', '.join(names)} in {escaped(run.candidates)} (trial.json, weights) are not "
            "the ones it read (rewritten since: by a tune run again, or by hand)")


def damage(run, stage, *, ran=(), outside=None, redone=None) -> str | None:
    """What is damaged in `stage`'s result in `run`, which differs from the one fit recorded
    (a JSON file gone, that does not parse or holds no JSON object; ensemble.json refused by
    its one reader, `ensemblefile.read_ensemble`, in its words; candidates/ gone, a
    candidate whose trial.json is unreadable or gone), in words, or None (another command's
    result, e.g. a stage run by hand). Fit's tune redoes only a trial of its own plan (the
    trials its stage record holds, `fit_plan`, while rank did not run again in this fit:
    `ran`): a folder outside it is said as such, with the command that redoes it
    (`sweepwords.redo_words`), and its name appended to `outside` (a list, when given);
    `redone` (a list, when given) gets the damaged folders fit's tune does redo: a folder
    without a readable trial.json, and a trial whose file is missing, damaged or changed since
    tune wrote it (`Candidate.problems`; tune redoes it, `Candidate.complete`).
    Before, each was followed by "running tune again", and fit's tune of --budget 4 left
    default-0006 of an earlier `tune --budget 8` as it was; a file changed since was said
    with "delete FOLDER and … (it redoes the trial), then fit again", and a trial of another
    plan whose file was missing as redone."""
    from hubensemble import candidate
    from hubensemble.fileio import read_json
    from hubensemble.text import counted

    if stage == "ensemble":  # its one reader's words (`ensemblefile.read_ensemble`)
        return (_refusal(run) if run.ensemble_json.exists()
                else f"{run.ensemble_json} is gone")
    if stage == "tune":
        if not run.candidates.is_dir():
            return f"{run.candidates} is gone"
        found, without = candidate.scan(run.candidates)
        # A folder whose trial.json was deleted: said without the scan's "delete the folder
        # and run its sweep's tune again, which redoes the trial". Fit's tune ("running tune
        # again") redoes it only if fit's plan holds it; one it leaves out is said after it
        # ran, with the command that redoes it (`pipeline._say_not_redone`).
        without = [(name, "its trial record trial.json is missing (deleted since tune wrote "
                    "the folder, which it writes whole)"
                    if not (run.candidates / name / candidate.TRIAL_FILE).exists() else why)
                   for name, why in without]
        # A file missing, damaged, or changed since tune wrote it (`Candidate.problems`):
        # tune redoes such a trial as it does one without a record (`Candidate.complete`).
        without += [(c.trial, "; ".join(c.problems)) for c in found if c.problems]
        plan, left = (None if "rank" in ran else fit_plan(run)), []
        if plan is not None:  # the folders of a sweep fit planned, outside that plan
            def sweep(name):
                return name.split("-", 1)[0]

            left = [name for name, _ in without
                    if sweep(name) in plan and name not in plan[sweep(name)]]
            without = [(name, f"{why}; fit's plan ({counted(len(plan[sweep(name)]), 'trial')} "
                        f"of sweep {sweep(name)}) does not hold it, so fit's tune leaves it as "
                        f"it is: {redo_way(run, name)}"
                        if name in left else why) for name, why in without]
            if outside is not None:
                outside.extend(left)
        if redone is not None:
            redone.extend(name for name, _ in without if name not in left)
        return "; ".join(f"candidates/{name}: {why}" for name, why in without) or None
    path = {"rank": run.ranking_json, "cost": run.cost_json,
            "evaluate": run.robustness_json}.get(stage)
    if path is None:
        return None
    if not path.exists():  # fit recorded one (no command deletes it): a lost file
        return f"{path} is gone"
    try:
        if not isinstance(read_json(path), dict):
            raise ValueError("it holds no JSON object")
    except (OSError, ValueError) as e:
        return f"{path} is damaged ({type(e).__name__}: {e})"
    return None


def redo_way(run, trial: str) -> str:
    """The way on of a damaged trial `trial` (an id) of run `run` that fit's tune leaves as it
    is (outside fit's plan: `damage`): "delete RUN/candidates/T and run `hubensemble tune
    --run RUN --sweep S --budget 8` (it redoes the trial), then fit again"
    (`sweepwords.redo_words`, "call run_tune(…)" from Python; tune redoes such a trial
    without the delete, `Candidate.complete`, which the words keep as `pipeline.
    _say_not_redone` says them), or, where that command is the fit's own
    (`sweepwords.redone_by_fit`), "run the same fit again (`hubensemble fit … --out RUN`;
    it redoes the trial)" ("(fit(…) with the arguments the run was fitted with; …)" from
    Python), which runs the stages after it: it said "delete … and call fit(…) … (it
    redoes the trial), then fit again"."""
    from hubensemble.sweepwords import redo_command, redo_words, redone_by_fit
    from hubensemble.text import escaped

    if redone_by_fit(run.path, trial):
        return f"run the same fit again ({redo_command(run.path, trial)}; it redoes the trial)"
    return (f"delete {escaped(run.candidates / trial)} and {redo_words(run.path, trial)} (it "
            "redoes the trial), then fit again")


def mark(run, stage, key, seconds, **details):
    """Records `stage` as done with `key` in run.json (under the run's lock: a tune worker or
    another stage writing its own section at the same time keeps it)."""
    def change(meta):
        stages = dict(stage_records(meta, run))
        stages[stage] = {"key": key, "done": True, "seconds": round(seconds, 2), **details}
        meta["stages"] = stages

    run.modify(change)


#: The fields of a stage's record that say how long its last run took and how (`mark`,
#: `mark_time`); the rest (key, reads, digests, done, files, record) is fit's reuse check.
TIME_FIELDS = ("seconds", "reused", "interrupted_seconds", "command")


def mark_time(run, stage, seconds, command):
    """Records the wall time (`seconds`, >= 0; rounded to 0.01 s) of `stage` ("rank",
    "ensemble", …) run by `command` on its own, not in a fit (its command line or its
    function from Python: `refresh.stage_ended`), in run.json's "stages" (`Run.modify`: under
    run.json's lock, written atomically), so the report's "Time per stage" shows every stage
    however it ran: only fit recorded them, and a `hubensemble rank` then `hubensemble
    report` said "run.json records no stage timings". A stage run again records its last
    run's time, as fit's `mark` does (the seconds of the result the run holds now), and
    drops "reused" and "interrupted_seconds" (that run ran it whole) and a refusal of an
    earlier call ("refused", `budgetrefusal.record_refusal`), and records the last fit's key
    of the stage then ("fit_key": `budgetrefusal.newer_first`). The record's other
    fields, fit's reuse check (key, reads, digests, done), are kept as they were: a fit
    after it reuses the stage only while its digests match the result now, as before (a
    stage no fit recorded has no "done", and fit runs it)."""
    def change(meta):
        from hubensemble.fileio import json_object

        stages = dict(stage_records(meta, run))
        old = stages.get(stage) or {}
        # A refusal (`budgetrefusal`) is of a call before this one, which ran whole.
        kept = {k: v for k, v in old.items() if k not in TIME_FIELDS + ("refused", "fit_key")}
        # The last fit's key of the stage as it ran on its own: it is newer than that fit
        # (`budgetrefusal.newer_first`), whose key it does not take.
        fit = json_object(json_object(meta.get("fit")).get("keys")).get(stage)
        stages[stage] = {**kept, "seconds": round(max(0.0, seconds), 2), "command": command,
                         **({"fit_key": fit} if fit is not None else {})}
        meta["stages"] = stages

    run.modify(change)


def mark_member_time(run, member: str, stage: str) -> float | None:
    """Records (`mark_time`, command `stage`) the wall time of `stage` run by the process of a
    chief/worker sweep holding its sweep lock `member` ("chief": the sweep's time, its
    workers' trials run while it serves), from the moment its stage function took that lock
    (`Run.work_started`) to now: a distributed sweep recorded none, and the report's "Time
    per stage" left tune out. Returns the seconds recorded; None when this process holds no
    such lock, or run.json could not be written (a warning says why; the sweep's
    candidates stand)."""
    import logging
    import time

    from hubensemble.errors import HubensembleError

    started = run.work_started(member)
    if started is None:
        return None
    seconds = max(0.0, time.time() - started)
    try:
        mark_time(run, stage, seconds, stage)
    except (HubensembleError, OSError) as e:
        logging.getLogger(__name__).warning(
            "%s's time was not recorded in %s (%s): the report's \"Time per stage\" does not "
            "show it", stage, run.meta_path, e)
        return None
    return seconds


def tree_sha256(folder) -> dict[str, str]:
    """{path relative to `folder`: sha256} of every file under it (an export: a few members'
    weights, hashed at about 1 GB/s)."""
    from hubensemble.fileio import file_sha256

    return dict(sorted((os.path.relpath(os.path.join(root, n), folder),
                        file_sha256(os.path.join(root, n)))
                       for root, _, names in os.walk(folder) for n in names))


def fit_plan(run) -> dict[str, list[str]] | None:
    """{sweep: its trial ids} that fit's tune planned when it last ran (the "trials" of run.json's
    stages.tune, `planned_trials` at that time), or None when the record holds none (a fit of a
    hubensemble before it was recorded, or no fit's tune)."""
    trials = (stage_records(run.meta(), run).get("tune") or {}).get("trials")
    if not isinstance(trials, dict) or not all(isinstance(v, list) for v in trials.values()):
        return None
    return trials


def planned_trials(run, sweeps) -> dict[str, list[str]]:
    """{sweep: the trial ids its last tune call planned} (run.json's tune.sweeps.<sweep>
    .trials) for each of `sweeps` that records a list: what fit's tune just planned, kept in
    its stage record (`fit_plan`); {} when run.json holds none."""
    from hubensemble.fileio import read_json

    try:
        records = read_json(run.meta_path)["tune"]["sweeps"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(records, dict):
        return {}
    return {s: list(records[s]["trials"]) for s in sweeps
            if isinstance(records.get(s), dict) and isinstance(records[s].get("trials"), list)}


def carried(run, stage) -> dict:
    """What a reused stage's record carries on: the export's files and run.json record, the
    seconds its run spent before an interruption."""
    record = stage_records(run.meta(), run).get(stage) or {}
    return {k: record[k] for k in ("files", "record", "interrupted_seconds", "trials")
            if k in record}
