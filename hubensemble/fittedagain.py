"""A fit's way on (the whole call a refusal gives) made to pass a fitted run's check of its
options: `fit(…, modules=['a,b'])` on a fitted run was told the comma, and its call, pasted,
was refused as "the rank or tune options (modules=None -> ['a', 'b']) changed since R was
fitted" (a new user, stop 69). The rule stays `resume.refuse_changed_options`'; this asks it.
Apart from `pastedway` (which preflight imports): resume's imports reach preflight, so the
command line's checks are handed `command_line_again` (cli.main) rather than import it."""

from __future__ import annotations

import dataclasses
import os

from hubensemble.errors import HubensembleError, RunError


def on_fitted_run(again, restarted, out, options_of, *, data_args=None, specs=None):
    """`again` (a fit's or demo's: `sweepagain.fit_again`, `python_fit_again`) made to pass
    a fitted run's check of its options (`resume.refuse_changed_options`): when the call it
    gives (budget, other options `changed`; `options_of(budget, changed)`: its FitOptions)
    would be refused on the run in `out` as "the rank or tune options … changed since R was
    fitted" (or its data, `data_args()`: a zero-argument function to the DataArgs of fit's
    data spec, or None; `specs`: its catalogue entries), the call of `restarted` (the same,
    with restart) in its place, then that refusal's words, which say what restart discards
    and the new out folder instead: "call hubensemble.fit(…, modules=['a', 'b'],
    restart=True) (as the rank or tune options (modules=None -> ['a', 'b']) changed since R
    was fitted; use a new out folder, or pass restart=True to discard the old results)".
    A run.json that cannot be read, or data whose spec is refused, leaves the call as it is
    (their own refusals say them). For a call without restart only: with it, nothing is
    refused so."""
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import Run

    def command(budget=None, **changed) -> str:
        said = again(budget, **changed)
        run = Run(os.fspath(out))
        try:
            run.meta()
            data = data_args() if data_args is not None else None
        except HubensembleError:
            return said
        try:
            refuse_changed_options(run, options_of(budget, changed), restart=False,
                                   data_args=data, specs=specs)
        except RunError as e:
            return f"{restarted(budget, **changed)} (as {e})"
        return said

    return command


def replaced(options, budget, changed: dict):
    """FitOptions `options` with the options `changed` ({name: value}) and `budget` (None:
    as it is) in place: the options of a way on's call (`on_fitted_run`'s `options_of`)."""
    return dataclasses.replace(options, **changed,
                               **({"budget": budget} if budget is not None else {}))


def command_line_again(args, again, restarted):
    """`on_fitted_run` for the command line `args` of fit or demo (its --out, FitOptions, data
    and catalogue as `commands.cmd_fit` and `cmd_demo` check the run with): `again` and
    `restarted` its whole command without and with --restart (`preflight._budget_again`)."""
    from hubensemble import options
    from hubensemble.fitoptions import FitOptions
    from hubensemble.rundir import DataArgs

    def data_args():
        if args.command == "demo":
            return DataArgs(spec="sklearn:digits", seed=args.data_seed)
        from hubensemble.cliargs import data_args_from
        return data_args_from(args)

    given = {o.name: getattr(args, o.name) for o in options.options_for(record="fit")}
    return on_fitted_run(again, restarted, args.out,
                         lambda budget, changed: replaced(FitOptions(**given), budget, changed),
                         data_args=data_args, specs=getattr(args, "specs", None))
