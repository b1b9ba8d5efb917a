"""The words of a chief/worker sweep's processes (`sweeplock`: their locks; `sweeprecords`:
the files they leave): who its chief was, why it ended, and the tune commands (or run_tune
calls) that resume a sweep, with the options its run.json records, for a worker whose chief
has gone and for a writer refused while workers run without their chief. TensorFlow-free."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from hubensemble import formats
from hubensemble.errors import HubensembleError, RunError
from hubensemble.fileio import read_json
from hubensemble.lockwords import command_words, on_command_line, option_word
from hubensemble.sweeprecords import chief_end_path, chief_record, end_record, member_lock_path
from hubensemble.text import absolute, shell_word, shown_time


#: The characters of a failed chief's reason a worker says (`reason_words`): the rest is in
#: its end record.
REASON_CHARS = 120
#: The last chief's words each worker of this process was warned of (`say_stale_chief`).
_SAID: set[tuple[str, str, str]] = set()


def chief_words(record: dict | None) -> str:
    """"its chief (pid 4242 on host box1, since …)" from its lock's `record`, or "its chief"."""
    record = record or {}
    pid, host = record.get("pid"), record.get("host")
    who = ", ".join(filter(None, (f"pid {pid} on host {host}" if pid else None,
                                  f"since {shown_time(record['since'])}" if record.get("since")
                                  else None)))
    return f"its chief ({who})" if who else "its chief"


def reason_words(run_dir, record: dict) -> str:
    """The words of a failed chief's end `record` (on run `run_dir`) that a worker says: its
    reason's first line, whole up to REASON_CHARS, else cut at a word there, "…", and where
    the whole is ("reason" in `chief_end_path`): a refusal with its commands made a worker's
    warning one line of ~1,400 characters)."""
    reason = str(record.get("reason") or "see its own output")
    head = reason.splitlines()[0] if reason.strip() else reason
    if len(head) <= REASON_CHARS and head == reason:
        return reason
    cut = head[:REASON_CHARS].rsplit(" ", 1)[0] if len(head) > REASON_CHARS else head
    return (f"{cut.rstrip(' ,;:')} … (its whole words: \"reason\" in "
            f"{absolute(chief_end_path(run_dir))}, and its own output)")


def sweep_options(run_dir, sweep, *, budget: int | None = None,
                  selection: bool = False) -> tuple[str, str] | None:
    """(flags, keywords) of the options sweep `sweep` of run `run_dir` was planned with, as
    its run.json records them (tune.sweeps.<sweep>: budget, profile, seed, modules,
    batchnorm, head_init, keep_weights), which every process of a chief/worker sweep is given
    alike (docs/tune.md): "--budget 60 --profile paper" and "budget=60, profile='paper'"
    (`rerun.option_flags`: a value at its default left out; the profile always, as
    tune's default is the run's; a "+" sweep's as its first part records them, the options
    of one call); `budget` given: that budget in place of the recorded one (`redo_budget`);
    `selection`: the options that plan the sweep over a new ranking's selection
    (`selection_command`): no --modules, and no --budget for a sweep of 4 trials per module
    (`sweeps.GROUPED_SWEEPS`: its default is 4 per selected module).
    None when run.json records no such sweep, cannot be read,
    or records a profile the command line cannot name (a Profile made in Python)."""
    from hubensemble import options
    from hubensemble.rerun import option_flags, option_keywords
    from hubensemble.hyperrule import PROFILES

    try:
        meta = read_json(Path(run_dir) / formats.RUN_FILE)
        record = meta["tune"]["sweeps"][str(sweep).split("+")[0]]  # a "+" sweep's parts
        profile = record["profile"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if profile not in PROFILES or PROFILES[profile].to_json() != record["profile"]:
        return None
    batchnorm = record.get("batchnorm")
    recorded = {"budget": record.get("budget") if budget is None else budget,
                "seed": record.get("seed"),
                "modules": record.get("requested_modules"),
                "batchnorm": batchnorm.get("requested") if isinstance(batchnorm, dict) else None,
                "head_init": record.get("head_init"), "keep_weights": record.get("keep_weights")}
    if selection:
        from hubensemble.sweeps import GROUPED_SWEEPS

        recorded["modules"] = None
        if all(part in GROUPED_SWEEPS for part in str(sweep).split("+")):
            recorded["budget"] = None
    table = [o for o in options.options_for(used_by="tune") if o.name in recorded]
    flags = " ".join(filter(None, (option_flags(recorded, table), f"--profile {profile}")))
    keywords = ", ".join(filter(None, (option_keywords(recorded, table),
                                       f"profile={profile!r}")))
    return flags, keywords


def ensemble_options(run_dir) -> tuple[str, str]:
    """(flags, keywords) of the selection settings of run `run_dir`'s ensemble, as the
    `ensemble` command and `run_ensemble` take them ("--budget 3 --size-rule paper",
    "budget=3, size_rule='paper'"; `rerun.option_flags`: a value at its default left out):
    RUN/ensemble.json's own record (objective, budget, with_replacement, bootstrap, seed,
    size_rule's rule, limits), which every ensemble writes, whether `fit` or `ensemble`
    selected it; else run.json's record of the last ensemble's options ("ensemble" ->
    "options", `ensemble.run_ensemble` writes it), else its fit options ("fit" -> "options",
    a run from before that record); ("", "") when none can be read. Every way on that
    selects again gives these (the TFLite and distill refusals, export's, ensemble.json's
    reader's, a trial tuned again): a plain `ensemble --run RUN` selects under the defaults,
    and a run fitted with --ensemble-budget 3 --size-rule paper got up to 15 members by
    another rule."""
    import dataclasses

    from hubensemble import options
    from hubensemble.rerun import option_flags, option_keywords

    recorded = {}
    try:
        record = read_json(os.path.join(os.fspath(run_dir), formats.ENSEMBLE_FILE))
        limits = record.get("limits") or {}
        recorded = {"objective": record["objective"], "ensemble_budget": record["budget"],
                    "with_replacement": record.get("with_replacement"),
                    "bootstrap": record.get("bootstrap"), "seed": record.get("seed"),
                    "size_rule": (record.get("size_rule") or {}).get("rule"),
                    **{k: limits.get(k) for k in ("max_gflops", "max_latency_ms",
                                                  "max_members")}}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        try:
            meta = read_json(os.path.join(os.fspath(run_dir), formats.RUN_FILE))
        except (OSError, ValueError):
            meta = {}
        # The ensemble stage's own record first: a standalone `ensemble` after fit selected
        # under other settings than fit's options.
        for section in ("ensemble", "fit"):
            found = (meta.get(section) if isinstance(meta, dict) else None) or {}
            recorded = found.get("options") if isinstance(found, dict) else None
            if isinstance(recorded, dict):
                break
    if not isinstance(recorded, dict):
        recorded = {}
    # The `ensemble` command's own flags: fit's --ensemble-budget is its --budget.
    table = [dataclasses.replace(o, flags=tuple(o.settings("ensemble")["flags"]))
             for o in options.options_for(used_by="ensemble")]
    return option_flags(recorded, table), option_keywords(recorded, table)


def ensemble_words(run_dir) -> str:
    """`lockwords.command_words` of `ensemble` on run `run_dir` with the settings of its
    ensemble (`ensemble_options`): the command that selects the same kind of ensemble."""
    flags, keywords = ensemble_options(run_dir)
    return command_words("ensemble", run_dir, flags=flags, keywords=keywords)


def recorded_sweep(run_dir) -> str | None:
    """The sweep of run `run_dir`'s last tune call as run.json records it: "tune" ->
    "call_sweep", the whole sweep as given ("default+probe"), else (a record from before it
    was kept) "sweep", the part it last ran; None when run.json records neither, cannot be
    read, or records a name that is no sweep (`sweeps.sweep_parts`). What a `tune` without
    --sweep resumes (`resumed_call`) and the resume words name (`sweep_command`): the part
    alone, said before, left a "+" sweep's other part unrun."""
    from hubensemble.sweeps import sweep_parts

    try:
        record = read_json(Path(run_dir) / formats.RUN_FILE)["tune"]
        sweep = record.get("call_sweep") or record["sweep"]
        sweep_parts(sweep)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, HubensembleError):
        return None
    return sweep if isinstance(sweep, str) and sweep else None


#: `resumed_call`'s `profile` when the caller does not say which it trains with.
UNSAID = object()


def resumed_call(run_dir, budget, modules, profile=UNSAID
                 ) -> tuple[str, object, object, str | None]:
    """(sweep, budget, modules, the line that says so) of a tune call on run `run_dir` given
    no sweep (`run_tune(sweep=None)`, the command line's `tune` without --sweep): the run's
    recorded sweep (`recorded_sweep`), with the --budget and --modules its record holds
    where the call gives none, so an interrupted sweep resumes where it was; "resuming
    sweep probe with --budget 4, --profile quick (from run.json; --sweep chooses another)".
    The line names the profile the call keeps (`profile` None: the run's, as run.json
    records its last tune: `runprofile.run_profile`'s) and a budget the call gives ("…;
    --budget 8 as given, run.json records 4"): `tune --run RUN --budget 8` said neither,
    and the user could not tell which profile the plan of 8 trained under. A caller that
    does not say its profile (`UNSAID`) gets none named. The default sweep and None when
    run.json records none (a first tune). A plain `tune --run RUN` ran the default sweep
    whatever the run's: 8 other trials for a probe run."""
    sweep = recorded_sweep(run_dir)
    if sweep is None:
        from hubensemble import options

        return options.default("sweep"), budget, modules, None
    try:
        tuned = read_json(Path(run_dir) / formats.RUN_FILE)["tune"]
        entry = tuned["sweeps"][sweep.split("+")[0]]  # a "+" sweep's: its first part's
    except (OSError, ValueError, KeyError, TypeError):
        tuned, entry = {}, {}
    tuned, entry = (x if isinstance(x, dict) else {} for x in (tuned, entry))
    taken, given, edited = [], "", []
    recorded_budget, recorded_modules = entry.get("budget"), entry.get("requested_modules")
    # A record edited by hand ("budget": "4", "requested_modules": "gen_a") is not taken:
    # the string's letters were resumed as five modules, an integer module name raised
    # TypeError, and "budget": true was budget True.
    if recorded_budget is not None and not (type(recorded_budget) is int
                                            and recorded_budget >= 1):
        edited.append(f"budget {recorded_budget!r}")
        recorded_budget = None
    if recorded_modules is not None and not (
            isinstance(recorded_modules, list)
            and all(isinstance(m, str) and m for m in recorded_modules)):
        edited.append(f"requested_modules {recorded_modules!r}")
        recorded_modules = None
    if budget is None and recorded_budget is not None:
        budget = recorded_budget
        taken.append(option_word(f"--budget {budget}", f"budget={budget}"))
    elif budget is not None:
        given = "; " + option_word(f"--budget {budget}", f"budget={budget}") + " as given"
        if recorded_budget is not None and recorded_budget != budget:
            given += f", {formats.RUN_FILE} records {recorded_budget}"
    if modules is None and recorded_modules:
        modules = list(recorded_modules)
        taken.append(option_word(f"--modules {' '.join(map(shell_word, modules))}",
                                 f"modules={modules!r}"))
    if edited:
        given += (f"; not taken: {' and '.join(edited)} of its record in {formats.RUN_FILE} "
                  "(edited by hand?), the call's own or the defaults instead")
    if profile is None:  # the run's: its last tune's (`runprofile.run_profile`)
        recorded = tuned.get("profile") or entry.get("profile")
        kept = recorded.get("name") if isinstance(recorded, dict) else None
        if isinstance(kept, str) and kept:
            taken.append(option_word(f"--profile {shell_word(kept)}", f"profile={kept!r}"))
    return sweep, budget, modules, (f"resuming sweep {sweep}"
                                    + (f" with {', '.join(taken)}" if taken else "")
                                    + f" (from {formats.RUN_FILE}; "
                                    + option_word("--sweep", "sweep=…")
                                    + f" chooses another){given}")


def redo_words(run_dir, trial: str) -> str:
    """"run `hubensemble tune --run RUN --sweep S --budget 6 --profile quick`" (from Python,
    "call run_tune(run_dir=…, sweep='S', budget=6, profile='quick')"; in a fit's folder whose
    fit plans the trial, "run `hubensemble fit … --out RUN`", `_fit_redo`): the command that runs
    trial `trial` (an id ``<sweep>-<index>-<module>``) of run `run_dir` again once its
    folder is deleted, with its sweep and the options run.json records for it
    (`sweep_options`; the sweep alone when it records none), under a budget whose plan
    holds the trial (`redo_budget`). A plain `tune --run RUN`, which
    export and ensemble gave, runs the default sweep: for a trial of another sweep it trained
    other trials and left that one undone."""
    from hubensemble.lockwords import call_verb

    return f"{call_verb()} {redo_command(run_dir, trial)}"


def redo_command(run_dir, trial: str, *, quoted: bool = True) -> str:
    """The one command (or run_tune call) that runs trial `trial` of run `run_dir` again
    (`redo_words` without its verb; the report's "to redo it" column, unquoted): the fit's
    command in a fit's folder whose fit plans the trial (`_fit_redo`), else its sweep's
    `sweep_command` under `redo_budget`."""
    sweep = str(trial).split("-", 1)[0]
    budget = redo_budget(run_dir, trial)
    fit = None if budget is not None else _fit_redo(run_dir, sweep)
    if fit is not None:
        return f"`{fit}`" if quoted and on_command_line() else fit
    return sweep_command(run_dir, sweep, quoted=quoted, budget=budget)


def redone_by_fit(run_dir, trial: str) -> bool:
    """Whether `redo_words` of trial `trial` of run `run_dir` name the fit's command
    (`_fit_redo`), which runs the stages after tune too: a way on then says no "then
    ensemble again" after it."""
    return redo_budget(run_dir, trial) is None and _fit_redo(
        run_dir, str(trial).split("-", 1)[0]) is not None


def _fit_redo(run_dir, sweep: str) -> str | None:
    """The fit command (`rerun.fit_command` without --restart, which reuses every finished
    stage and trial; from Python, "fit(…) with the arguments the run was fitted with") that
    redoes a trial of sweep `sweep` of run `run_dir` once its folder is deleted, when the run
    is a fit's (run.json "fit") whose options plan that sweep as run.json records it
    (`fit_plans`); None otherwise (a run of stage commands, or a later `tune` of other
    options than the fit's, which the fit command would not plan). Inside a fit's folder the
    words named `hubensemble tune …` where the fit command does it and the stages after it."""
    try:
        meta = read_json(Path(run_dir) / formats.RUN_FILE)
        record = meta["tune"]["sweeps"][sweep]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(meta, dict) or "fit" not in meta or not fit_plans(meta, sweep, record):
        return None
    if not on_command_line():
        return "hubensemble.fit(…) with the arguments the run was fitted with"
    from hubensemble.rerun import fit_command

    return fit_command(run_dir, meta, restart=False)


def fit_plans(meta: dict, sweep: str, record) -> bool:
    """Whether the fit run.json `meta` records ("fit" -> "options") plans sweep `sweep` as its
    `record` (run.json's tune.sweeps.<sweep>) says: the sweep is one of the fit's parts and
    each of its options the fit records (budget, seed, modules, batchnorm, head_init,
    keep_weights) has the recorded value (None and the option's default alike). A later
    `tune --run RUN` (--budget 8 after a fit's 4) records the sweep anew, and the fit's
    command plans 4 trials and never runs the 8th. A fit record without options (written
    before they were kept) is taken to plan it. `sweepstate.finish_command` asks it of an
    unfinished sweep."""
    from hubensemble import options

    fit = (meta.get("fit") or {}).get("options") if isinstance(meta.get("fit"), dict) else None
    if not isinstance(fit, dict):
        return True
    if not isinstance(record, dict):
        return False
    batchnorm = record.get("batchnorm")
    given = {"budget": record.get("budget"), "modules": record.get("requested_modules"),
             "seed": record.get("seed"),
             "batchnorm": batchnorm.get("requested") if isinstance(batchnorm, dict) else None,
             "head_init": record.get("head_init"), "keep_weights": record.get("keep_weights")}

    def normal(name, value):
        value = options.default(name) if value is None else value
        return list(value) if isinstance(value, (list, tuple)) else value

    parts = str(fit.get("sweep") or options.default("sweep")).split("+")
    return sweep in parts and all(normal(name, fit[name]) == normal(name, value)
                                  for name, value in given.items() if name in fit)


def redo_budget(run_dir, trial: str) -> int | None:
    """The --budget whose plan holds trial `trial` (``<sweep>-<index>-<module>``) of run
    `run_dir` and every trial of its sweep that RUN/candidates holds, for `redo_words`: None
    (the recorded one) when run.json's record of its sweep (tune.sweeps.<sweep>: the last
    call's plan, "trials") holds them all, cannot be read or lists no plan (a record from
    before "trials"); else the largest index + 1 of those outside it, rounded up to a whole
    group of 4 for the sweeps that run 4 trials per module or family
    (`sweeps.GROUPED_SWEEPS`: a budget L keeps L // 4 of them), at least the recorded plan's
    size. A plan under the same profile, seed and modules with a larger budget keeps its
    first entries (`sweepplan.plan_sweep`), so that plan holds them, and it reuses the done
    ones. One budget per sweep, whichever of its trials is asked about: the words of each
    unusable trial are the one command that redoes them all (after `tune --budget 8` then
    `tune --budget 4`, default-0001 was told `--budget 4` and default-0006 `--budget 8`,
    two commands in one "no usable candidates"). Every trial folder of the sweep counts, as
    this module does not read candidates (`candidate` words its reasons through this one).
    Before, the last call's budget was said: the redo of trial 0006 planned 0000-0003 and
    left it undone."""
    from hubensemble.sweeps import GROUPED_SWEEPS

    sweep = str(trial).partition("-")[0]
    try:
        record = read_json(Path(run_dir) / formats.RUN_FILE)["tune"]["sweeps"][sweep]
        planned = record["trials"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(planned, list):
        return None
    try:
        held = os.listdir(Path(run_dir) / formats.CANDIDATES_DIR)
    except OSError:
        held = []
    names = [str(trial), *(name for name in held if name.startswith(f"{sweep}-"))]
    outside = [index for name in names if name not in planned
               and (index := _trial_index(name)) is not None and index >= 0]
    if not outside:
        return None
    need = max(outside) + 1
    if sweep in GROUPED_SWEEPS:
        need = -(-need // 4) * 4
    return max(need, len(planned), *([record["budget"]] if isinstance(record.get("budget"), int)
                                     else []))


def _trial_index(trial: str) -> int | None:
    """The index of trial id `trial` (``<sweep>-<index>-<module>``), None when it has none."""
    try:
        return int(str(trial).split("-", 2)[1])
    except (IndexError, ValueError):
        return None


def sweep_command(run_dir, sweep=None, *, quoted: bool = True, budget: int | None = None) -> str:
    """"`hubensemble tune --run RUN --sweep probe --budget 4 --profile quick`" (from Python,
    "run_tune(run_dir=…, sweep='probe', budget=4, profile='quick')"): the tune command of
    sweep `sweep` of run `run_dir` with the options run.json records for it
    (`sweep_options`); `sweep` None: the run's last tune call's (`recorded_sweep`: a "+"
    sweep whole), and a plain `tune --run RUN` when it records none. Run again, it reuses
    the sweep's done trials and writes what tune writes besides them (RUN/labels/); the
    sweep is named even where a plain one resumes it (`resumed_call`), so that the words
    hold whatever --sweep default the caller's version has. Without the
    backquotes when not `quoted` (`lockwords.command_words`'s); `budget`: that --budget in
    place of the recorded one (`redo_budget`)."""
    if sweep is None:
        sweep = recorded_sweep(run_dir)
        if sweep is None:
            return command_words("tune", run_dir, quoted=quoted)
    flags, keywords = sweep_options(run_dir, sweep, budget=budget) or (
        (f"--budget {budget}", f"budget={budget}") if budget is not None else ("", ""))
    return command_words("tune", run_dir,
                         flags=" ".join(filter(None, (f"--sweep {shell_word(sweep)}", flags))),
                         keywords=", ".join(filter(None, (f"sweep={sweep!r}", keywords))),
                         quoted=quoted)


def call_command(run_dir, call: dict) -> str:
    """"`hubensemble tune --run RUN --sweep seeds --budget 3`" (from Python, "run_tune(
    run_dir=…, sweep='seeds', budget=3)"): the tune call `call` (`run_tune`'s keywords,
    `options.kwargs_for("tune", args)`) on run `run_dir` as its caller gave it, each option
    not at its default and not None (`rerun.option_flags`), for a refusal whose way on ends
    with this call again (`tunepending.check_tune_data`: the fit that records data that
    moved runs the fit's sweep, not this one)."""
    from hubensemble import options
    from hubensemble.rerun import option_flags, option_keywords

    table = [o for o in options.options_for(used_by="tune") if o.name in call]
    return command_words("tune", run_dir, flags=option_flags(call, table),
                         keywords=option_keywords(call, table))


def selection_command(run_dir) -> str:
    """"`hubensemble tune --run RUN --sweep probe --profile quick`" (from Python, "run_tune(
    run_dir=…, sweep='probe', profile='quick')"): the tune command that adds trials for the
    modules a new ranking of run `run_dir` selects, for the note of rank (and rank merge) over
    a run that holds candidates. The run's last sweep (`recorded_sweep`) with the options
    run.json records for it but --modules (which tunes the modules named, not the
    selection) and, for a sweep of 4 trials per module, --budget (its default plans 4 per
    selected module: the recorded budget of a one-module sweep planned that module alone);
    a plain `tune --run RUN` when run.json records no sweep. The plain command was said over
    a probe sweep's run: it resumed the probe sweep's recorded budget and modules, and a
    fit's folder was told nothing of the sweep its candidates came from."""
    sweep = recorded_sweep(run_dir)
    if sweep is None:
        return command_words("tune", run_dir)
    flags, keywords = sweep_options(run_dir, sweep, selection=True) or ("", "")
    return command_words("tune", run_dir,
                         flags=" ".join(filter(None, (f"--sweep {shell_word(sweep)}", flags))),
                         keywords=", ".join(filter(None, (f"sweep={sweep!r}", keywords))))


def _tune_words(run_dir, tuner_id: str, sweep, oracle, recorded=None) -> str:
    """The tune command (or run_tune call, from Python: `lockwords.command_words`) of the
    process `tuner_id` of a chief/worker sweep, with the sweep's `recorded` options
    (`sweep_options`: flags, keywords) when given."""
    more_flags, more_keywords = recorded or ("", "")
    flags = " ".join(filter(None, (f"--tuner-id {tuner_id}",
                                   f"--sweep {shell_word(sweep)}" if sweep else None,
                                   more_flags,
                                   f"--oracle {shell_word(oracle)}" if oracle else
                                   "--oracle HOST:PORT")))
    keywords = ", ".join(filter(None, (f"sweep={sweep!r}" if sweep else None,
                                       more_keywords,
                                       f"tuner_id={tuner_id!r}",
                                       f"oracle_address={oracle!r}" if oracle else
                                       "oracle_address='HOST:PORT'")))
    return command_words("tune", run_dir, flags=flags, keywords=keywords)


def _own_options() -> str:
    """The options each process of a sweep may have had of its own, which run.json keeps
    none of: "--strategy, --cache-dir or --max-failures" (from Python, the keywords)."""
    pairs = (("--strategy", "strategy"), ("--cache-dir", "cache_dir"),
             ("--max-failures", "max_failures"))
    words = [option_word(flag, keyword) for flag, keyword in pairs]
    return f"{', '.join(words[:-1])} or {words[-1]}"


def _whole_sweep(run_dir, member: str, sweep):
    """The whole "A+B" sweep worker `member` was started with (its lock's record) when
    `sweep` is a part of it, else `sweep`: `--sweep A` alone resumed A and never B."""
    whole = (chief_record(member_lock_path(run_dir, member)) or {}).get("sweep")
    return whole if isinstance(whole, str) and sweep in whole.split("+") else sweep


def chief_cannot_listen(address: str) -> HubensembleError:
    """The error of a chief that cannot listen at `address` ("HOST:PORT": taken, or not this
    machine's; `tune.distributed`), marked "oracle_taken" so that its end record
    (`sweeplock.member_lock`) has its workers' resume words (`worker_without_chief`) name no
    port."""
    error = HubensembleError(f"the chief cannot listen on {address}; pick a free port or "
                             "an address of this machine")
    error.oracle_taken = True
    return error


def worker_without_chief(run_dir, member: str, sweep, oracle, gone: str,
                         listen_wait: float | None = None) -> RunError:
    """The error a worker (tuner id `member`) stops with when its chief has gone (`gone`:
    `sweeplock.chief_gone`'s or `chief_start_watch`'s words) while it waited for the chief's
    answer, or (`listen_wait`: the seconds it would wait, $HUBENSEMBLE_CHIEF_TIMEOUT) for
    the chief to listen: what happened and the commands that resume (the chief again, then this
    worker), each with the sweep's options as run.json records them (`sweep_options`): a
    worker told to start the chief "with the options it had", without its --budget and
    --profile, resumed with other settings. When the last chief could not listen at its
    address (its end record's "oracle_taken"), both commands say --oracle HOST:PORT and what
    to put there: the taken address again failed the same way."""
    sweep = _whole_sweep(run_dir, member, sweep)
    recorded = sweep_options(run_dir, sweep)
    taken = (end_record(run_dir, sweep) or {}).get("oracle_taken")  # its port: not again
    chief = _tune_words(run_dir, "chief", sweep, None if taken else oracle, recorded)
    worker = _tune_words(run_dir, member, sweep, None if taken else oracle, recorded)
    resume = (f"({chief}), then this worker ({worker}), each with any {_own_options()} it "
              "had" if recorded else
              f"({chief} with the options it had), then this worker ({worker} with its own)")
    if taken:
        resume += (f"; HOST:PORT: a free address of the chief's machine, the same in both "
                   f"(not {oracle}, where the chief could not listen)")
    waited = ("for it, up to an hour each time it asks (Keras Tuner's time-out)"
              if listen_wait is None else
              f"for it to listen, up to {listen_wait:g} s ($HUBENSEMBLE_CHIEF_TIMEOUT)")
    return RunError(
        f"{option_word(f'tune --tuner-id {member}', f'run_tune(tuner_id={member!r})')} on "
        f"{absolute(run_dir)}: {gone}; this worker stops rather than wait {waited}. "
        f"The trials finished are kept. To resume, start the chief again {resume}")


def worker_plan_differs(run_dir, member: str, sweep, oracle, trial: str,
                        changes: list[str]) -> RunError:
    """The error a worker (tuner id `member`) stops with when its chief hands out a trial
    its own plan does not have (Keras Tuner's trial `trial`, e.g. "seeds-0000-m (plan index
    0)"): the options that differ from the chief's (`changes`, `pool.worker_changes`' "--flag
    chief's -> worker's" texts, in the caller's words: `pool.callers_words`; none found: the
    options every process
    must be given alike, and the data and hubensemble version), and this worker's command
    with the chief's options as run.json records them (`sweep_options`), under the same
    tuner id: the chief keeps that trial for it. Before, the worker stopped with Keras
    Tuner's FatalError and its traceback naming no option, having recorded its own options
    over the chief's in run.json."""
    sweep = _whole_sweep(run_dir, member, sweep)
    recorded = sweep_options(run_dir, sweep)
    why = (f"its options differ from the chief's (run.json's record of sweep {sweep}): "
           f"{'; '.join(changes)} (the chief's -> this worker's)"
           if changes else
           "no option differs from run.json's record of the sweep, so the chief plans "
           "otherwise: start every process with the same " + option_word(
               "--sweep, --budget, --seed, --profile, --modules, --batchnorm, --head-init and "
               "--train-batch-size", "sweep, budget, seed, profile, modules, batchnorm, "
               "head_init and train_batch_size") + ", the same hubensemble version and the "
           "same data files")
    worker = _tune_words(run_dir, member, sweep, oracle, recorded)
    again = (f"start it again with the chief's options ({worker}, with any {_own_options()} "
             "it had)" if recorded else f"start it again ({worker}) with the chief's options")
    return RunError(
        f"{option_word(f'tune --tuner-id {member}', f'run_tune(tuner_id={member!r})')} on "
        f"{absolute(run_dir)}: the chief handed out trial {trial}, which this worker's plan "
        f"does not have: {why}. Nothing was trained or recorded; {again}, under the same "
        f"tuner id: the chief keeps that trial for {member}")


def stale_chief_note(run_dir, member: str, sweep, oracle, gone: str, timeout: float) -> str:
    """The warning of a worker (tuner id `member`) that begins to wait for its chief to listen
    at `oracle` while the chief's lock says the last chief was killed (`gone`:
    `sweeplock.chief_start_watch`'s `stale`): it waits (a chief being started again is simply used),
    and says how to start one, with the sweep's recorded options (`sweep_options`)."""
    sweep = _whole_sweep(run_dir, member, sweep)
    recorded = sweep_options(run_dir, sweep)
    chief = _tune_words(run_dir, "chief", sweep, oracle, recorded)
    return (f"{option_word(f'tune --tuner-id {member}', f'run_tune(tuner_id={member!r})')} on "
            f"{absolute(run_dir)}: waiting for the chief at {oracle} (up to {timeout:g} s, "
            f"$HUBENSEMBLE_CHIEF_TIMEOUT), while the last one has gone: {gone}. Unless it is "
            f"being started again, start it ({chief}"
            + (f", with any {_own_options()} it had)" if recorded else
               " with the options it had)"))


def say_stale_chief(logger, run_dir, member: str, sweep, oracle, gone: str,
                    timeout: float) -> None:
    """Warns `stale_chief_note` on `logger` once for worker `member` on run `run_dir` and the
    words `gone`: from the command line before TensorFlow loads (`sweepend.worker_stop`),
    then not again at the wait (`tune.distributed.wait_for_chief`)."""
    key = (os.path.realpath(run_dir), member, gone)
    if key not in _SAID:
        _SAID.add(key)
        logger.warning("%s", stale_chief_note(run_dir, member, sweep, oracle, gone, timeout))


def without_chief(run_dir, members, sweep, oracle) -> str:
    """The way on when the workers `members` run without their chief: each stops when it
    next asks the chief (`tune.chiefwatch`; a worker training a trial ends it first), where
    Keras Tuner's client waited up to an hour each time (its gRPC time-out,
    keras_tuner/src/distribute/oracle_client.py TIMEOUT: measured, a worker whose chief was
    killed with kill -9 mid-trial was still running, and refusing writers, 120 s later);
    start the chief again or stop the workers."""
    here = socket.gethostname()
    pids = [(o or {}).get("pid") for _, o in members]
    local = [str(p) for p, (_, o) in zip(pids, members) if p and (o or {}).get("host") in
             (None, here)]
    remote = [f"pid {p} on host {o['host']}" for p, (_, o) in zip(pids, members)
              if p and (o or {}).get("host") not in (None, here)]
    stop = ", ".join(filter(None, [f"`kill {' '.join(local)}`" if local else None, *remote]))
    recorded = sweep_options(run_dir, sweep)
    chief = _tune_words(run_dir, "chief", sweep, oracle, recorded)
    return ("its workers stop when they next ask it (a worker training a trial ends that "
            f"trial first): start the chief again ({chief}"
            + (f", with any {_own_options()} it had" if recorded else " with the options it had")
            + "; the "
            "workers go on with it), or stop the "
            + ("worker" if len(members) == 1 else "workers")
            + (f" ({stop})" if stop else "") + "; ")
