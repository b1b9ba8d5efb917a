"""A fit's options held as its fitted run recorded them where they resolve to the same values:
`fit(…, budget=8, modules=['m0', 'm1'])` on a run fitted with budget=None (the default: 8)
and modules=None (the ranking's selection: m0 and m1) was refused as "the rank or tune
options (budget=None -> 8; modules=None -> ['m0', 'm1']) changed", and told to pass
restart=True, which deletes the finished trials of the same plan (a new user, stop 69). The
stages are keyed by the options as given (`stagerecords.stage_keys`); this gives them as the
run recorded them when both resolve alike, so its keys match. Files only: run.json's record.
"""

from __future__ import annotations

import dataclasses
import json


def as_fitted(options, meta):
    """`options` (a pipeline.FitOptions) with `budget` and `modules` as run.json `meta` (a
    dict; anything else: `options` as they are) records its last fit's ("fit" -> "options")
    where each resolves to the value that fit's sweep ("tune") resolved it to: a budget of
    None as `sweepplan.default_budget` of the sweep, profile and number of modules (and
    "tune" -> "budget" when it records a number, the same); modules None, of a default or
    probe sweep, as the modules it tuned ("tune" -> "modules", every one of them with
    trials: "untuned" null), compared as sets (a sweep takes them in rank order:
    `sweeps.check_modules`). Only when that sweep is the
    fit's own, of the same sweep and seed as `options`, and every rank option is the one
    it recorded (the same selection); otherwise `options` unchanged, and
    the key comparison decides as before. Returns a FitOptions (the same object when
    nothing is replaced)."""
    from hubensemble.sweepplan import default_budget

    fit = meta.get("fit") if isinstance(meta, dict) else None
    was = fit.get("options") if isinstance(fit, dict) else None
    tune = meta.get("tune") if isinstance(meta, dict) else None
    if not (isinstance(was, dict) and isinstance(tune, dict)):
        return options
    # The same ranking options: the same selection, whose size a default budget is of
    # (top_k=3 and budget=8 on a run of top_k=2's 2 modules: 12 trials, not 8).
    now = json.loads(json.dumps(dataclasses.asdict(options), default=str))
    if any(now.get(n) != was.get(n) for n in options.STAGE_FIELDS["rank"]):
        return options
    pool = tune.get("modules")
    if not (tune.get("sweep") == tune.get("call_sweep") == was.get("sweep") == options.sweep
            and tune.get("seed") == was.get("seed") == options.seed
            and tune.get("untuned") is None and isinstance(pool, list) and pool
            and all(isinstance(m, str) for m in pool)):
        return options
    changes = {}
    # A default or probe sweep tunes every module of its pool ("untuned" null); another
    # sweep's trials may be of one module of many (hyper: one generalist).
    if (was.get("modules") is None and options.modules and options.sweep in ("default", "probe")
            and set(options.modules) == set(pool)):
        changes["modules"] = None
    recorded = was.get("budget")
    if (changes.get("modules", options.modules) == was.get("modules")  # the same pool
            and options.budget != recorded and (recorded is None or isinstance(recorded, int))):
        def resolved(budget):  # None: the default of the pool's size (sweepplan.plan_sweep)
            return default_budget(options.sweep, options.profile, len(pool)) if (
                budget is None) else budget

        tuned = tune.get("budget")
        if resolved(options.budget) == resolved(recorded) == resolved(
                tuned if isinstance(tuned, int) else None):
            changes["budget"] = recorded
    return dataclasses.replace(options, **changes) if changes else options


def as_fitted_in(options, run):
    """`as_fitted` of `options` and the run.json of `run` (a rundir.Run): `options` as they
    are when it has none or it cannot be read (the check that reads it refuses that)."""
    from hubensemble.errors import HubensembleError

    if not run.meta_path.is_file():
        return options
    try:
        return as_fitted(options, run.meta())
    except (HubensembleError, OSError):
        return options
