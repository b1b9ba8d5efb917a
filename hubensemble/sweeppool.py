"""The pool checks of `tune`: a sweep must not add candidates of other settings to the pool
RUN/candidates holds (the ensemble selects from every candidate there as one pool).

`check_pool` looks at every candidate, whatever trial ids the call plans (its profile) and at
run.json's record of the same sweep (`sweep_changes`: --seed, --batchnorm); `check_candidates`
at the planned trial ids that already hold candidates made otherwise (`trial_differences`).
Each raises RunError before the call records or trains anything. TensorFlow-free (outside
the `tune` package, which loads it first), so that the command line can refuse a call before
TensorFlow loads (`tunepending`); `tune.pool` re-exports them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Sequence

from hubensemble import candidate
from hubensemble.errors import HubensembleError, RunError
from hubensemble.hyperrule import HParams, Profile, get_profile
from hubensemble.lockwords import on_command_line, option_word, run_words
from hubensemble.rundir import Run
from hubensemble.runprofile import recorded_profile, training_changes
from hubensemble.sweepstate import sweep_record
from hubensemble.sweepplan import PlanEntry
from hubensemble.sweepsummary import finished_candidate
from hubensemble.text import counted, shell_word


#: trial_differences' words for a trial.json whose hparams cannot be read.
UNREADABLE = "hyperparameters: unreadable in its trial.json"


def trial_differences(record: Mapping, entry: PlanEntry) -> list[str]:
    """What differs between a candidate's trial.json `record` and the plan `entry` of the
    same trial id, as "field: recorded -> planned" texts (module, then HParams fields in
    order); [] when the candidate is this trial's."""
    found = []
    if record.get("module") != entry.module:
        found.append(f"module: {record.get('module')!r} -> {entry.module!r}")
    old, why = candidate.record_hparams(record)  # the one reader, Candidate.read_hparams's
    if why is not None:
        return found + [f"{UNREADABLE} ({why})"]
    for f in dataclasses.fields(HParams):
        was, now = getattr(old, f.name), getattr(entry.hparams, f.name)
        if was != now:  # an AugConfig is long: name it only
            found.append(f.name if f.name == "augmentation" else f"{f.name}: {was!r} -> {now!r}")
    return found


def sweep_changes(recorded: Mapping | None, *, seed: int, profile: Profile,
                  batchnorm: str, head_init: str | None = None) -> list[str]:
    """The tune options of this call that differ from run.json's record of the same sweep
    (its ``tune.sweeps[SWEEP]`` entry), as "--flag recorded -> now" texts; [] when there is
    no record or nothing it records differs. `head_init` (--head-init, None: the profile's)
    is compared as given, as --batchnorm is, when the record has one: a sweep recorded before
    it was (or a probe sweep, which has no head start to choose) is not compared. Nor is a
    value edited by hand into another type (the entry, or its seed, profile, batchnorm or
    head_init: this call's record replaces it), which stopped tune with AttributeError or
    ValueError."""
    if not isinstance(recorded, Mapping) or not recorded:
        return []
    found = []
    try:
        was = None if isinstance(recorded.get("seed"), bool) else int(recorded.get("seed"))
    except (TypeError, ValueError):
        was = None
    if was is not None and was != int(seed):
        found.append(f"--seed {was} -> {seed}")
    prof, bn = recorded.get("profile"), recorded.get("batchnorm")
    name = prof.get("name") if isinstance(prof, Mapping) else None
    if isinstance(name, str) and name and name != profile.name:
        found.append(f"--profile {name} -> {profile.name}")
    requested = bn.get("requested") if isinstance(bn, Mapping) else None
    if isinstance(requested, str) and requested and requested != batchnorm:
        found.append(f"--batchnorm {requested} -> {batchnorm}")
    if "head_init" in recorded and isinstance(recorded["head_init"], (str, type(None))) and (
            recorded["head_init"] != head_init):
        from hubensemble.rerun import shown

        found.append(f"--head-init {shown(recorded['head_init'])} -> {shown(head_init)}")
    return found


def worker_changes(recorded: Mapping | None, *, budget, modules, seed: int, profile: Profile,
                   batchnorm: str, head_init: str | None = None) -> list[str]:
    """The options of a chief/worker sweep's worker that differ from its chief's, as
    run.json's record of the sweep holds them (``tune.sweeps[SWEEP]``, which the chief
    writes before it serves), as "--flag chief's -> worker's" texts: `sweep_changes`' then
    --budget, --modules, --train-batch-size and a profile of the same name defined
    otherwise (another hubensemble version: the fields that train otherwise,
    `runprofile.training_changes`). [] when there is no record or nothing differs."""
    from hubensemble.rerun import shown

    if not isinstance(recorded, Mapping) or not recorded:
        return []
    found = sweep_changes(recorded, seed=seed, profile=profile, batchnorm=batchnorm,
                          head_init=head_init)
    if recorded.get("budget") != budget:
        found.append(f"--budget {shown(recorded.get('budget'))} -> {shown(budget)}")
    was = recorded.get("requested_modules") or None
    if (list(was) if was else None) != (list(modules) if modules else None):
        found.append(f"--modules {shown(was)} -> {shown(modules or None)}")
    prof = recorded.get("profile")
    if isinstance(prof, Mapping) and prof.get("name") == profile.name:
        try:
            chiefs = Profile(**{k: v for k, v in prof.items()
                                if k in {f.name for f in dataclasses.fields(Profile)}})
        except (HubensembleError, TypeError):
            return found
        if chiefs.batch_size != profile.batch_size:
            found.append(f"--train-batch-size {chiefs.batch_size} -> {profile.batch_size}")
        changed = training_changes(chiefs, _at_batch(profile, chiefs.batch_size))
        if changed:
            found.append(f"--profile {profile.name} ({', '.join(changed)})")
    return found


def callers_words(change: str) -> str:
    """A `sweep_changes` text ("--seed 0 -> 1") in the caller's words: as it is on the command
    line, run_tune's keyword from Python ("seed 0 -> 1"; it was told the flag)."""
    flag, _, rest = change.partition(" ")
    if on_command_line() or not flag.startswith("--"):
        return change
    return f"{flag[2:].replace('-', '_')} {rest}"


def _at_batch(profile: Profile, batch) -> Profile:
    """`profile` at the training batch `batch` (`Profile.with_train_batch`: lr_scale x
    batch / its batch), to compare with a candidate's record of another batch field by field;
    `profile` itself for a batch that is not an integer >= 1 (a damaged record)."""
    try:
        return profile.with_train_batch(batch)
    except HubensembleError:
        return profile


def say_unfinished_profile(run: Run, profile: Profile) -> None:
    """Warns (once per tune call: `run_tune`, not under --restart) when run.json records a
    tune at another profile than `profile` (a Profile) while RUN/candidates holds no
    candidate (a tune killed before its first trial ended, resumed with another --profile):
    `check_pool` lets it start at `profile`, since nothing of the old one mixes in, and the
    record it replaces is named, with the flag that goes on at it (it was not said)."""
    import logging

    if candidate.scan(run.candidates)[0]:
        return  # check_pool's business: another profile is refused
    tuned = run.meta().get("tune")
    recorded = tuned.get("profile") if isinstance(tuned, dict) else None
    name = recorded.get("name") if isinstance(recorded, dict) else None
    if not isinstance(name, str) or name == profile.name:
        return
    logging.getLogger("hubensemble.tune.stage").warning(
        "%s records a tune at profile %s, and this one runs at %s: no candidate of %s had "
        "finished in %s (none of its trials ended), so the sweep starts at %s and nothing "
        "of the two profiles mixes in one pool; %s", run.meta_path, name, profile.name, name,
        run.candidates, profile.name,
        f"{option_word(f'--profile {name}', f'profile={name!r}')} goes on at {name} instead")


def distributed_call(tuner_id, oracle_address) -> bool:
    """Whether a tune call takes part in a chief/worker sweep (arguments or environment)."""
    return bool(tuner_id or oracle_address or os.environ.get("KERASTUNER_ORACLE_IP"))


def check_pool(run: Run, *, sweep: str, seed: int, profile: Profile, batchnorm: str,
               head_init: str | None = None, restarting: Sequence[str] = (),
               budget: int | None = None, modules: Sequence[str] | None = None,
               tuner_id: str | None = None, oracle_address: str | None = None,
               call_sweep: str | None = None) -> None:
    """Refuses (RunError) a sweep that would add candidates of other settings to the pool
    RUN/candidates already holds, whatever their trial ids: a profile other than any candidate's
    (trial.json "profile"; the sweeps of one pool share it) or another training batch than
    theirs (named as --train-batch-size RECORDED -> NOW, its lr_scale following it: the flag,
    not the profile, changed it), or another --seed, --batchnorm or --head-init than run.json's
    record of this sweep while candidates of it are there (`sweep_changes`). A profile of their
    name defined otherwise (an older hubensemble's) is refused too, naming what changed; the way
    on is tune without a profile (the definition as recorded), said as a tune to run when a fit
    holds the run (`Run.fit_here`: its --profile takes today's definition alone).
    `check_candidates` alone looked only at the planned trial ids: a re-ranking that put another
    module first, --modules, or another sweep planned other ids, and the ensemble then chose
    from two profiles as one sweep (a new-user check). The candidates of the sweeps `restarting`
    (`tune --restart`: about to be removed) are not looked at. The way on "pass the recorded
    value" names the tune call that does (`_recorded_call`: this call's --budget `budget` and
    --modules `modules` kept); it named none. A process of a chief/worker sweep (`tuner_id`,
    `oracle_address`: its --tuner-id and --oracle, as given) is told its own command, those
    included, and not --restart, which such a process is refused
    (`tunepending.check_restart`): a worker was named the chief's plain tune. `call_sweep`:
    the call's whole sweep (None: `sweep`), which the named call keeps: a "seeds+probe"
    call was told a tune of `--sweep seeds` alone."""
    from hubensemble.rerun import start_again

    found, _ = candidate.scan(run.candidates)
    found = [c for c in found if not any(c.trial.startswith(f"{s}-") for s in restarting)]
    if not found:
        return
    meta = run.meta()
    changes = {}  # "--flag recorded -> now": the candidates it concerns
    redefined = False  # a candidate of this profile's name, recorded as it trained otherwise
    for c in found:
        name = c.record.get("profile")
        if name and name != profile.name:
            changes.setdefault(f"--profile {name} -> {profile.name}", []).append(c.trial)
        elif name and (recorded_as := recorded_profile(
                c.record, meta, run.meta_path)) is not None:
            batch = recorded_as.batch_size
            if batch != profile.batch_size:  # the user's flag, not the profile, changed it
                changes.setdefault(f"--train-batch-size {batch} -> {profile.batch_size}",
                                   []).append(c.trial)
            # What else differs at the recorded batch (its lr_scale follows the batch)
            changed = training_changes(recorded_as, _at_batch(profile, batch))
            if changed:
                redefined = redefined or recorded_as
                changes.setdefault(f"--profile {name} ({', '.join(changed)})", []).append(c.trial)
    mine = [c.trial for c in found if c.trial.startswith(f"{sweep}-")]
    recorded = sweep_record(meta, sweep, run.meta_path)
    for change in sweep_changes(recorded, seed=seed, profile=profile, batchnorm=batchnorm,
                                head_init=head_init):
        if mine and not change.startswith("--profile"):
            changes[change] = mine
    if not changes:
        return
    trials = list(dict.fromkeys(t for ts in changes.values() for t in ts))
    # The restart advice starts the run with this call's settings, not the recorded ones
    # that refused it (it said --profile quick to a refused `tune --profile cpu`).
    typed = {"--profile": ("profile", profile.name), "--seed": ("seed", seed),
             "--batchnorm": ("batchnorm", batchnorm), "--head-init": ("head_init", head_init),
             "--train-batch-size": ("train_batch_size", profile.batch_size)}
    now = dict(typed[change.split(" ", 1)[0]] for change in changes)
    distributed = distributed_call(tuner_id, oracle_address)
    clash = _disagreeing(run, redefined) if redefined else None
    raise RunError(
        f"{counted(len(trials), 'candidate')} in {run.candidates} (e.g. {trials[0]}) "
        f"{'was' if len(trials) == 1 else 'were'} tuned with "
        f"other settings than this call's: {'; '.join(map(callers_words, changes))} "
        "(recorded -> now), and the "
        "ensemble selects from every candidate there as one pool. Pass the recorded "
        f"{'value' if len(changes) == 1 else 'values'} to add to this pool"
        + _recorded_call(run, changes, sweep=sweep, call_sweep=call_sweep, seed=seed,
                         profile=profile,
                         batchnorm=batchnorm, head_init=head_init, budget=budget,
                         modules=modules, tuner_id=tuner_id,
                         oracle_address=oracle_address, held=[c.trial for c in found]) + (
            clash if clash else
            f" (tune without {option_word('--profile', 'profile')} goes on with the "
            "profile as recorded)" if redefined and not run.fit_here() else
            # fit trains at today's definition alone: its --profile names no other
            f" (fit trains at today's {profile.name} alone: {run_words('tune', run.path)}, "
            f"without {option_word('--profile', 'profile')}, goes on with the profile as "
            "recorded)" if redefined else "") + (
            f", start sweep {sweep} over with them ({option_word('--restart', 'restart=True')}"
            ": its candidates are discarded)" if all(t.startswith(f"{sweep}-") for t in trials)
            and not distributed else "") + ", use a new run folder for the "
        f"new ones, or {start_again(run.path, meta, now=now)}")


def _recorded_call(run: Run, changes: Mapping, *, sweep, seed, profile: Profile, batchnorm,
                   head_init, budget, modules, tuner_id=None, oracle_address=None,
                   call_sweep=None, held: Sequence[str] = ()) -> str:
    """" (run `hubensemble tune --run RUN --sweep S … --profile quick`)" (from Python, "(call
    run_tune(…))"): the tune call of `check_pool` with the recorded value of each of its
    `changes` ("--flag recorded -> now") in place of this call's, its other options
    (`budget`, `modules`, a worker's `tuner_id` and `oracle_address`, …) as given; "" when
    no change names a recorded value (a profile
    of its name defined otherwise: tune without --profile is the way on, said besides). Its
    --sweep is `call_sweep` (the call's whole sweep, "seeds+probe"), else part `sweep`.
    Every part of that sweep whose candidates the pool holds (`held`: their trial ids) has
    its own record's --seed, --batchnorm and --head-init (`_part_values`), which `changes`
    (this part's) did not say: the call named for "default+probe" kept this call's --seed,
    and pasted, the probe part was refused ("--seed 0 -> 3"), its call then the default
    part ("--seed 3 -> 0"). Parts whose records agree share the call; parts that disagree
    are named one call each, in order: "(run `… --sweep default --seed 3 …`, then `…
    --sweep probe …`)"."""
    from hubensemble import options
    from hubensemble.rerun import option_flags, option_keywords
    from hubensemble.sweepplan import sweep_parts

    values = {"budget": budget, "modules": list(modules) if modules else None,
              "seed": seed, "batchnorm": batchnorm, "head_init": head_init,
              "tuner_id": tuner_id, "oracle": oracle_address}
    name, batch = profile.name, None  # --train-batch-size: when given, or recorded
    try:
        if get_profile(profile.name).batch_size != profile.batch_size:
            batch = profile.batch_size
    except HubensembleError:
        pass
    meta = run.meta()
    recorded = sweep_record(meta, sweep, run.meta_path) or {}
    passed = False
    for change in changes:
        flag, _, rest = change.partition(" ")
        was, arrow, _ = rest.partition(" -> ")
        if not arrow or " " in was:  # "--profile quick (bn_clipnorm 0.5 -> 0.0)": no value
            continue
        passed = True
        if flag == "--profile":
            name = was
        elif flag == "--train-batch-size":
            batch = int(was)
        elif flag == "--seed":
            values["seed"] = int(was)
        elif flag == "--batchnorm":
            values["batchnorm"] = was
        elif flag == "--head-init":
            values["head_init"] = recorded.get("head_init")
    if not passed:
        return ""
    try:  # the profile's own batch needs no flag
        values["train_batch_size"] = None if get_profile(name).batch_size == batch else batch
    except HubensembleError:
        values["train_batch_size"] = batch
    table = [o for o in options.options_for(used_by="tune") if o.name in values]
    named = call_sweep or sweep
    try:
        parts = sweep_parts(named)
    except ValueError:
        parts = (sweep,)
    calls: list[tuple[list[str], dict]] = []  # (parts, their values), in the sweep's order
    for part in parts:
        mine = _part_values(meta, run, part, values, profile, held)
        if calls and calls[-1][1] == mine:
            calls[-1][0].append(part)
        else:
            calls.append(([part], mine))
    if len(calls) == 1:
        calls = [([named], calls[0][1])]

    def words(sweep_named, now):
        # --sweep and --profile always: tune without them resumes the run's own
        flags = " ".join(filter(None, (f"--sweep {shell_word(sweep_named)}",
                                       option_flags(now, table), f"--profile {name}")))
        keywords = ", ".join(filter(None, (f"sweep={sweep_named!r}",
                                           option_keywords(now, table), f"profile={name!r}")))
        return run_words("tune", run.path, flags=flags, keywords=keywords)

    said = [words("+".join(ps), now) for ps, now in calls]
    first, rest = said[0], [w.split(" ", 1)[1] for w in said[1:]]  # "run `…`": one verb
    return f" ({', then '.join([first, *rest])})"


def _part_values(meta, run: Run, part: str, values: dict, profile: Profile,
                 held: Sequence[str]) -> dict:
    """`values` (`_recorded_call`'s: the named call's options) with the --seed, --batchnorm
    and --head-init of run.json's record of sweep `part` in place of those `sweep_changes`
    finds differ, when the pool holds candidates of that part (`held`: trial ids); `values`
    as they are otherwise (a part without candidates is not compared)."""
    if not any(t.startswith(f"{part}-") for t in held):
        return dict(values)
    recorded = sweep_record(meta, part, run.meta_path) or {}
    now = dict(values)
    for change in sweep_changes(recorded, seed=values["seed"], profile=profile,
                                batchnorm=values["batchnorm"], head_init=values["head_init"]):
        flag = change.split(" ", 1)[0]
        if flag == "--seed":
            now["seed"] = int(recorded["seed"])
        elif flag == "--batchnorm":
            now["batchnorm"] = recorded["batchnorm"]["requested"]
        elif flag == "--head-init":
            now["head_init"] = recorded["head_init"]
    return now


def _disagreeing(run: Run, trained: Profile) -> str | None:
    """" (not by tune without --profile: …)" when run `run`'s last tune profile as run.json
    records it ("tune" -> "profile", which a tune without --profile trains at:
    `runprofile.run_profile`) is not the definition `trained` that its record of the
    candidates' sweep holds (tune.sweeps.S.profile: what they trained at), a hand edit of
    one of the two: such a tune is refused again, and said it was the way on. The way on
    then: restore run.json, or --profile NAME when today's definition of the name is the
    one they trained at (otherwise only the restore or a new sweep). None when the two
    agree (the recorded profile is an older definition: tune without --profile trains so)."""
    from hubensemble.runprofile import run_profile

    try:
        last, _ = run_profile(run)
    except HubensembleError:
        return None
    differ = training_changes(trained, _at_batch(last, trained.batch_size))
    if last.name == trained.name and not differ and last.batch_size == trained.batch_size:
        return None
    try:
        today = _at_batch(get_profile(trained.name), trained.batch_size)
    except HubensembleError:
        today = None
    works = today is not None and not training_changes(trained, today)
    return (f" (not by tune without {option_word('--profile', 'profile')}: it trains at the "
            f"last tune's profile as {run.meta_path} records it (\"tune\" -> \"profile\"), "
            f"{last.name}, which is not the one its record of the candidates' sweep holds, "
            f"which they trained at ({', '.join(differ) or 'another profile'}: theirs -> "
            "the last tune's; edited by hand?): restore run.json from a copy" + (
                f", or pass {option_word(f'--profile {trained.name}', f'profile={trained.name!r}')}"
                f", whose definition today is the one they trained at" if works else "") + ")")


def check_damaged(candidates_dir, trials: Sequence[str]) -> None:
    """RunError (`candidate.unreadable_hparams_words`: the file, why, and the way on) when a
    complete candidate of one of the planned `trials` (ids) holds hyperparameters that cannot
    be read (`candidate.record_hparams`: edited or damaged by hand), so tune cannot tell
    whether it is that trial. `check_candidates`' first refusal; the trial ids alone decide
    it, so `tunepending.check_tune_call` says it before TensorFlow (it came after its
    import). Files only."""
    damaged = []
    for trial in trials:
        found = finished_candidate(candidates_dir, trial)
        if found is not None:
            _, why = candidate.record_hparams(found.record)
            if why is not None:  # a file edited or damaged by hand, not another option
                damaged.append((trial, why))
    if damaged:  # said as such: the file and the way on, as export and distill say it
        trial, why = damaged[0]
        raise RunError(candidate.unreadable_hparams_words(
            os.path.join(os.fspath(candidates_dir), trial), why,
            doubt=f", so tune cannot tell whether the candidate is this sweep's trial {trial}"
            + (f" ({len(damaged) - 1} more such: {', '.join(t for t, _ in damaged[1:])})"
               if len(damaged) > 1 else "")))


def check_candidates(candidates_dir, plan: Sequence[PlanEntry],
                     changed: Sequence[str] = ()) -> None:
    """Refuses (RunError) a plan whose trial ids already hold complete candidates made with
    other settings (another module or hyperparameters, seed included), naming the options
    `changed` since the sweep was recorded (`sweep_changes`), else the first such trial and
    what differs in it (`trial_differences`: the trial's own derived seed, for one, means
    little to a user who changed --seed)."""
    check_damaged(candidates_dir, [entry.trial_id for entry in plan])
    clash = []
    for entry in plan:
        found = finished_candidate(candidates_dir, entry.trial_id)
        if found is not None:
            differences = trial_differences(found.record, entry)
            if differences:
                clash.append((entry.trial_id, differences))
    if clash:
        trial, differences = clash[0]
        why = (f"{', '.join(map(callers_words, changed))}" if changed else
               f"e.g. {trial}: {'; '.join(differences)} (recorded -> planned; another "
               + ", ".join(option_word(f"--{k.replace('_', '-')}", k) for k in (
                   "seed", "profile", "batchnorm", "head_init")) + " or module list?)")
        raise RunError(
            f"{counted(len(clash), 'candidate')} in {candidates_dir} "
            f"{'was' if len(clash) == 1 else 'were'} made with other settings "
            f"than this sweep plans: {why}. Resume with the settings they were made with, or "
            "use a new run directory")
