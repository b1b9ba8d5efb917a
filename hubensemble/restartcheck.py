"""Before a restart removes a sweep's finished work: are the modules it will train here? A
run loads each module from the path it was ranked from; one moved or deleted since fails
every trial, so `tune --restart` removed all 8 finished candidates of user 474's run and then
ran 4 trials that failed alike; fit restart=True cleared the run, then ranked without the
moved module. Files alone (no TensorFlow): the plan's rule
(`sweepplan.plan_sweep`, as `sweepend.pending_trials` plans) and the file system's
(`catalogue_here.missing_here` of run.json's entries, in the loader's words)."""

from __future__ import annotations

import warnings

from hubensemble.errors import HubensembleError, RunError
from hubensemble.lockwords import option_word
from hubensemble.text import absolute, escaped


def planned_modules(run, sweep: str, options: dict) -> list[str] | None:
    """The names of the modules (str, each once, in plan order) the trials of each part of
    `sweep` train in run `run` (a `rundir.Run`), as the stage plans them with `options`
    {"budget", "seed", "profile" (a name or None: the run's), "modules"}; None when the plan
    cannot be made (the stage says why). No TensorFlow; raises nothing."""
    from hubensemble.runprofile import as_profile, run_profile
    from hubensemble.runspecs import module_specs
    from hubensemble.sweepplan import plan_sweep, sweep_parts
    from hubensemble.threads import warnings_block

    try:
        ranking, modules, task = run.tune_inputs()
        specs = module_specs(run, modules)
        profile = options.get("profile")
        profile = run_profile(run)[0] if profile is None else as_profile(profile)
        names: list[str] = []
        with warnings_block():  # the stage warns of the plan, once
            warnings.simplefilter("ignore")
            for part in sweep_parts(sweep):
                for entry in plan_sweep(ranking, specs, sweep=part, task=task, profile=profile,
                                        budget=options.get("budget"),
                                        modules=options.get("modules"),
                                        seed=options.get("seed") or 0, run_dir=run.path):
                    if entry.module not in names:
                        names.append(entry.module)
    except (HubensembleError, OSError, ValueError, KeyError, TypeError):
        return None
    return names


def check_modules_here(run, names, said: str) -> None:
    """RunError when a module of `names` (module names of run `run`'s run.json entries) is a
    local path with nothing there, before `said` (the restart's words, "tune --restart",
    "run_tune(restart=True)") removes anything: "tune --restart removes the finished work
    of the modules below first, and these cannot load here, so nothing was removed: module
    'm0': [local path] …/mods/m0 does not exist; check the path, or put the module back there
    if it was moved or deleted (…), or point the catalogue's handle at its new place and run
    `hubensemble fit …` again (the same module is no change); then tune --restart again"
    (`catalogue_here.missing_here` with recorded=True: never a sibling, another network).
    Nothing for a module run.json holds no readable entry of (the stage says why)."""
    from hubensemble.catalogue_here import missing_here
    from hubensemble.runspecs import catalogue_entries, module_spec

    try:
        entries = catalogue_entries(run)
        specs = [module_spec(run, name, modules=entries) for name in names if name in entries]
    except HubensembleError:
        return  # the stage's words
    gone = missing_here(specs, recorded=True, fit_again=_fit_again(run))
    if gone:
        raise RunError(_refusal(gone, f"{said} would remove what the sweep wrote in "
                                f"{escaped(absolute(run.path))} and train again", said))


def check_fit_restart(out, specs, modules, said: str | None = None) -> None:
    """RunError, nothing removed, when a fit's restart (`said`: "fit --restart",
    "fit(restart=True)", the default) would clear run folder `out` (str or Path), which
    holds results (`Run.holds_results`), and a module it may train is a local path with
    nothing there (`catalogue_here.missing_here`, the put-back words): an entry of `specs`
    (the call's catalogue, ModuleSpec) named in `modules` (FitOptions.modules: names, or
    None: every entry, as the ranking selects them after it runs). fit restart=True cleared
    the run first, then rank skipped the moved module: its finished trials gone, the fit
    another one. An entry left out of `modules` or of the catalogue is not checked (left
    out on purpose). Files alone: no TensorFlow; nothing for a folder without results."""
    import os

    from hubensemble.catalogue_here import missing_here
    from hubensemble.rundir import Run

    run = Run(os.fspath(out))
    if not run.holds_results():
        return
    said = said or option_word("fit --restart", "fit(restart=True)")
    named = set(modules or ())
    gone = missing_here([s for s in specs if not named or s.name in named], recorded=True,
                        fit_again=_fit_again(run))
    if gone:
        them = "it" if len(gone) == 1 else "them"
        raise RunError(_refusal(gone, f"{said} would remove the results in "
                                f"{escaped(absolute(run.path))} and rank and train again",
                                said, f"to start over without {them}, leave {them} out of "
                                f"{option_word('--modules', 'modules')} or the catalogue"))


def check_members_here(run, specs, said: str) -> None:
    """RunError, nothing written, when a module of `specs` (ModuleSpec: run `run`'s run.json
    entries of the members `said`, "export" or "export_ensemble()", rebuilds) is a local
    path with nothing there (`catalogue_here.missing_here`, recorded=True: the put-back and
    point-at words): "export of /abs/RUN rebuilds each member it exports from its module,
    but its module cannot load here, so nothing was written: module 'm0': …; then export
    again". Before the data loads (user 479: after TensorFlow's import and a whole
    data folder read, 1 min 03 s, the first member's build said it). Files alone."""
    from hubensemble.catalogue_here import missing_here

    gone = missing_here(list({s.name: s for s in specs}.values()), recorded=True,
                        fit_again=_fit_again(run))
    if gone:
        raise RunError(_refusal(gone, f"{said} of {escaped(absolute(run.path))} rebuilds "
                                "each member it exports from its module", said,
                                nothing="written"))


def _fit_again(run) -> str:
    """`rerun.fit_again` of `run` (a rundir.Run): the run's own whole fit, which the put-back
    words name; "" when its run.json is unreadable (the stage says so) or no fit made it."""
    from hubensemble.rerun import fit_again

    try:
        return fit_again(run.path, run.meta())
    except HubensembleError:
        return ""


def _refusal(gone, removes: str, said: str, or_else: str = "", nothing: str = "removed") -> str:
    """The words of a restart refused, nothing removed (`nothing`: "written" for a stage
    that would write): `removes` ("tune --restart would remove …"), the modules of `gone`
    ([(spec, ModuleLoadError)]) and their reasons, then `said` again, or `or_else` (another
    way on), when given."""
    reasons = "; ".join(f"module {spec.name!r}: {error.message}" for spec, error in gone)
    return (f"{removes}, but {'its module' if len(gone) == 1 else 'modules'} cannot load "
            f"here, so nothing was {nothing}: {reasons}; then {said} again"
            + (f"; or, {or_else}" if or_else else ""))
