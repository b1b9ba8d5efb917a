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


def trial_profile(record, meta) -> Profile:
    """The Profile a trial was tuned with: trial.json's "profile" name (a built-in profile),
    or a custom profile recorded in run.json's tune section (`meta`). Raises RunError when
    neither has it (the trial cannot be retrained)."""
    name = record.get("profile") or (meta.get("tune") or {}).get("profile", {}).get("name")
    with contextlib.suppress(HubensembleError):
        return get_profile(name)
    # A custom profile: its full record is in run.json's tune section.
    tune_meta = meta.get("tune") or {}
    sweeps = list((tune_meta.get("sweeps") or {}).values()) + [tune_meta]
    fields = {f.name for f in dataclasses.fields(Profile)}
    for sweep in sweeps:
        prof = (sweep or {}).get("profile")
        if isinstance(prof, dict) and prof.get("name") == name:
            return Profile(**{k: v for k, v in prof.items() if k in fields})
    raise RunError(f"trial {record.get('trial')!r} was tuned with profile {name!r}, which is "
                   "neither built in nor recorded in run.json; it cannot be retrained")


def run_profile(run) -> tuple[Profile, str]:
    """(the Profile a run (rundir.Run) was tuned or ranked with, where that was read): the
    last tune's (run.json "tune" -> "profile", a custom one as recorded there), else rank's
    (ranking.json "profile"), else cpu (the table's default) for a run that records
    neither."""
    meta = run.meta()
    tuned = ((meta.get("tune") or {}).get("profile") or {}).get("name")
    if tuned:
        return trial_profile({"profile": tuned}, meta), f"the run's last tune, {run.meta_path}"
    ranked = (run.ranking() or {}).get("profile")
    if ranked:
        return as_profile(ranked), f"the run's rank, {run.ranking_json}"
    return as_profile(options.default("profile")), "the default: the run records none"
