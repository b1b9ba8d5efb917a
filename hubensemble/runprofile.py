"""Which profile (hyperrule.Profile) a run folder was tuned or ranked with, read from its
files: a trial's (`trial_profile`), the run's (`run_profile`: what `tune` and `rank` of the
folder take when no profile is given). TensorFlow-free; below both `rank` and `tune`, which
read it (tune.plans and tune.stage re-export these names)."""

from __future__ import annotations

import contextlib
import dataclasses

from hubensemble import options
from hubensemble.errors import HubensembleError, RunError
from hubensemble.hyperrule import Profile, get_profile


def as_profile(profile) -> Profile:
    """A Profile, or the named one of hyperrule.PROFILES (HubensembleError for an unknown
    name, listing the known ones)."""
    return profile if isinstance(profile, Profile) else get_profile(profile)


#: What `run_profile`'s source says of a record of an older definition than today's (tune says
#: it as a warning: its trials go on at that definition, as one pool with its candidates).
OLDER = "as an older hubensemble defined it"

#: The Profile fields that change how a candidate trains. Not these: its name and words, and
#: fail_at_chance, which only decides whether tune marks a trained candidate failed.
_NOT_TRAINING = ("name", "description", "fail_at_chance")


def training_changes(recorded: Profile, profile: Profile) -> list[str]:
    """The fields of `recorded` (a run's record of a profile) that train otherwise than
    `profile`'s, as "field recorded -> now" texts ([] when they train alike), e.g.
    ["bn_lr_scale 1.0 -> 0.001"] for a cpu profile recorded before 6b0791a read by today's."""
    return [f"{f.name} {getattr(recorded, f.name)!r} -> {getattr(profile, f.name)!r}"
            for f in dataclasses.fields(Profile) if f.name not in _NOT_TRAINING
            and getattr(recorded, f.name) != getattr(profile, f.name)]


#: The Profile fields that change what `rank` computes: the embedding resolution
#: (hyperrule.preprocessing_for caps the crop at resolution_cap). A ranking made at a profile
#: of one name but other values of these is another ranking.
RANK_FIELDS = ("resolution_cap",)


def rank_changes(recorded: Profile, profile: Profile) -> list[str]:
    """`training_changes` of the fields that change a ranking (`RANK_FIELDS`): "field
    recorded -> now" texts, [] when `recorded` and `profile` rank alike."""
    return [c for c in training_changes(recorded, profile) if c.split(" ", 1)[0] in RANK_FIELDS]


def profile_of_record(prof) -> Profile | None:
    """The Profile of a recorded definition (`Profile.to_json`, as run.json and ranking.json
    hold it), None when `prof` is none or unreadable (compared by name, as before records)."""
    if not isinstance(prof, dict):
        return None
    try:
        return _from_record(prof, "the record")
    except RunError:
        return None


def field_fault(prof) -> str | None:
    """What is wrong with a recorded profile definition `prof` (a dict, `Profile.to_json`)
    field by field: "its batch_size is a JSON string ("x"), expected a whole number >= 1"
    for the first field of another kind than `Profile` declares (a whole number where an
    int, a number where a float, true/false where a bool, text where a str; null only where
    the field may be None; batch_size, min_steps and max_steps >= 1), else None. Fields
    unknown here are not checked. Profile(**record) took batch_size "x", and tune stopped
    later with "invalid hyperparameters: batch_size must be an integer >= 1 (got 'x')",
    naming no file, and its memory note read the batch as None."""
    import json
    import typing

    from hubensemble.fileio import json_kind

    hints = typing.get_type_hints(Profile)
    for field in dataclasses.fields(Profile):
        if field.name not in prof:
            continue
        value, kind = prof[field.name], hints[field.name]
        kinds = set(typing.get_args(kind)) or {kind}
        ok = ((value is None and type(None) in kinds)
              or (isinstance(value, bool) and bool in kinds)
              or (not isinstance(value, bool) and (
                  (isinstance(value, int) and (int in kinds or float in kinds))
                  or (isinstance(value, float) and float in kinds)
                  or (isinstance(value, str) and str in kinds))))
        low = field.name in ("batch_size", "min_steps", "max_steps") and ok and value is not None
        if ok and not (low and value < 1):
            continue
        want = ("a whole number >= 1" if low or field.name in ("batch_size", "min_steps",
                                                               "max_steps")
                else {int: "a whole number", float: "a number", bool: "true or false",
                      str: "text"}[next(k for k in (int, float, bool, str) if k in kinds)])
        return (f"its {field.name} is {json_kind(value)} ({json.dumps(value)}), expected {want}"
                + (" or null" if type(None) in kinds else ""))
    return None


def _from_record(prof, where, field='"tune" -> "profile"') -> Profile:
    # A field added after the record was written takes its default, which is what the
    # version before it did (head_init "zero", no BatchNorm rule); fields unknown here (a
    # newer version's) are left out.
    fields = {f.name for f in dataclasses.fields(Profile)}
    try:
        fault = field_fault(prof)
        if fault:
            raise TypeError(f"{field}: {fault}")
        return Profile(**{k: v for k, v in prof.items() if k in fields})
    except (HubensembleError, TypeError) as e:
        raise RunError(f"{where} records profile {prof.get('name')!r} unreadably ({e}); "
                       "restore run.json, or fit the run again from the start") from None


def _recorded(meta, name, trial=None, where=None) -> dict | None:
    """run.json's record of profile `name`: that of the sweep whose "trials" list `trial`, or
    with no trial that of the last tune; None when there is none (a run tuned before the
    record named its trials keeps today's definition of a built-in profile). RunError for a
    damaged sweep record (`sweepstate.sweep_records`, naming `where`, run.json's path)."""
    from hubensemble.sweepstate import sweep_records

    tune_meta = meta.get("tune") or {}
    entries = ([s for s in sweep_records(meta, where).values()
                if trial in (s.get("trials") or ())] if trial is not None
               else [tune_meta])
    for entry in entries:
        prof = (entry or {}).get("profile")
        if isinstance(prof, dict) and prof.get("name") == name:
            return prof
    return None


def _file(where) -> str:
    """run.json's path `where` as a message names it: absolute; "run.json" when None."""
    from hubensemble.text import absolute, escaped

    return "run.json" if where is None else escaped(absolute(where))


def recorded_profile(record, meta, where=None) -> Profile | None:
    """The Profile run.json's tune section (`meta`) recorded for the sweep that planned the
    trial of trial.json `record` (its "trial" in that sweep's "trials", at its "profile"
    name); None when no sweep record lists it. RunError when that record is damaged, or a
    sweep's record is no object (`sweepstate.sweep_records`, naming `where`, run.json's
    path, when given)."""
    trial, name = record.get("trial"), record.get("profile")
    prof = _recorded(meta, name, trial, where) if trial and name else None
    return None if prof is None else _from_record(
        prof, _file(where), f'the "profile" of the "tune" -> "sweeps" record listing {trial}')


def trial_profile(record, meta, where=None) -> Profile:
    """The Profile a trial was tuned with: as run.json's tune section (`meta`) recorded it for
    the sweep that planned the trial (trial.json's "trial" in that sweep's "trials"), so a
    trial tuned before a built-in profile's definition changed is retrained as it was trained
    (6b0791a changed cpu's BatchNorm rule); else trial.json's "profile" name, a built-in
    profile or a custom one recorded in run.json. Raises RunError when neither has it (the
    trial cannot be retrained) or the record is damaged, naming `where` (run.json's path, made
    absolute; "run.json" when not given)."""
    name = record.get("profile") or (meta.get("tune") or {}).get("profile", {}).get("name")
    recorded = recorded_profile(record, meta, where)
    if recorded is not None:
        return recorded
    with contextlib.suppress(HubensembleError):
        return get_profile(name)
    # A custom profile: its full record is in run.json's tune section.
    from hubensemble.sweepstate import sweep_records

    file = _file(where)
    sweeps = list(sweep_records(meta, where).values()) + [meta.get("tune") or {}]
    for i, sweep in enumerate(sweeps):
        prof = sweep.get("profile")
        if isinstance(prof, dict) and prof.get("name") == name:
            return _from_record(prof, file, '"tune" -> "profile"' if i == len(sweeps) - 1
                                else 'the "profile" of a "tune" -> "sweeps" record')
    raise RunError(f"trial {record.get('trial')!r} was tuned with profile {name!r}, which is "
                   f"neither built in nor recorded in {file}; it cannot be retrained")


def choose_another(run) -> str:
    """How a tune kept at the run's profile (`run_profile`: tune without --profile) may train
    at another, for the end of its "profile …" line (`run` a `rundir.Run`): "--profile
    chooses another" ("profile=… chooses another" from Python) while RUN/candidates holds no
    candidate; else that another is refused while it holds some (`tune.pool.check_pool`
    refuses every other profile, and today's definition of an older one), and the two ways
    that train at another: --restart (each sweep's candidates discarded) or a new run
    folder."""
    from hubensemble.candidate import scan
    from hubensemble.lockwords import option_word

    found = scan(run.candidates)[0]
    if not found:
        return f"{option_word('--profile', 'profile=…')} chooses another"
    return (f"another {option_word('--profile', 'profile')} is refused while "
            f"{run.candidates} holds candidates ({len(found)}) of this one: start each "
            f"sweep over at it with {option_word('--restart', 'restart=True')} (its "
            "candidates are discarded), or use a new run folder")


def _ranked_profile(name, definition, source) -> tuple[Profile, str]:
    """(Profile, source) of a ranking.json's "profile" `name` and "profile_definition": the
    recorded definition when it ranks otherwise than today's of that name (`rank_changes`:
    its embeddings were made at another resolution, so tune goes on at it), and the source
    says what changed; else the profile by name (it ranks alike; nothing was trained at it
    yet). A custom profile's name, unknown today, is taken as recorded; RunError (through
    `as_profile`'s HubensembleError) when neither is readable."""
    recorded = profile_of_record(definition)
    if recorded is not None and recorded.name != name:
        recorded = None  # a record of another profile than the one named: by name
    try:
        today = as_profile(name)
    except HubensembleError:
        if recorded is None:
            raise
        return recorded, source
    changed = rank_changes(recorded, today) if recorded is not None else []
    if not changed:
        return today, source
    return recorded, (f"{source}, {OLDER} ({', '.join(changed)} "
                      "since); its ranking embedded so")


def run_profile(run) -> tuple[Profile, str]:
    """(the Profile a run (rundir.Run) was tuned or ranked with, where that was read): the
    last tune's as run.json records it (an older definition of a built-in profile included,
    so a resumed sweep trains as its candidates did, and the source says what changed since;
    one tuned at --train-batch-size N is compared with today's at N, and the source says N),
    else rank's (ranking.json "profile", at the definition ranking.json records when that
    ranks otherwise than today's: `runprofile.rank_changes`; the source says what changed),
    else cpu (the table's default) for a run that records neither."""
    from hubensemble.fileio import json_kind

    meta = run.meta()
    tune = meta.get("tune") or {}
    record = tune.get("profile") if isinstance(tune, dict) else tune
    if not isinstance(record, (dict, type(None))) or not isinstance(tune, dict):
        # A hand edit ("tune": {"profile": "quick"}, "tune": ["x"]) was an AttributeError.
        field = '"tune"' if not isinstance(tune, dict) else 'the "profile" of its "tune" record'
        raise RunError(f"{run.meta_path}: {field} is {json_kind(record)}, expected an object; "
                       "restore run.json, or fit the run again from the start")
    tuned = (record or {}).get("name")
    if tuned:
        source = f"the run's last tune, {run.meta_path}"
        prof = _recorded(meta, tuned, where=run.meta_path)
        if prof is None:
            return trial_profile({"profile": tuned}, meta, run.meta_path), source
        recorded = _from_record(prof, _file(run.meta_path))
        with contextlib.suppress(HubensembleError):
            today = get_profile(tuned)
            if recorded.batch_size != today.batch_size:  # tuned with --train-batch-size
                today = today.with_train_batch(recorded.batch_size)
                source += f", at --train-batch-size {recorded.batch_size}"
            changed = training_changes(recorded, today)
            if changed:
                source += (f", {OLDER} ({', '.join(changed)} "
                           "since); its candidates trained so")
        return recorded, source
    ranking = run.ranking() or {}
    ranked = ranking.get("profile")
    if ranked:
        return _ranked_profile(ranked, ranking.get("profile_definition"),
                               f"the run's rank, {run.ranking_json}")
    return as_profile(options.default("profile")), "the default: the run records none"
