"""The way on of a refused fit or tune call made to pass, pasted, the checks it meets next.

A refusal's whole command or call (`sweeps.check_modules`' and `check_budget`'s `again`:
`sweepagain.fit_again`, `tune_again`) changes the value refused and keeps the rest as typed;
pasted, it was refused again for a fault the first check could already see: `tune --run R
--modules a,b --budget 1` was told the budget, whose command kept `--modules a,b`, then the
comma (a new user, stop 69); `fit(…, modules=['a,b'])` on a fitted run was told the comma,
whose call was then refused as "the rank or tune options … changed since R was fitted".
`check_sweep_call` names the modules' and the budget's faults in one refusal whose call holds
both (a fitted run's options: `fittedagain`). The rules stay `sweeps`' own: this only asks
them. No TensorFlow; imported by `preflight`, so nothing here imports `resume` (which reaches
preflight).
"""

from __future__ import annotations

from hubensemble.errors import HubensembleError
from hubensemble.lockwords import option_word
from hubensemble.optionerror import OptionError
from hubensemble.sweeps import check_budget, check_modules


def budget_fault(sweep: str | None, budget, modules) -> tuple[int, str] | None:
    """(the budget `check_budget` asks for, its fault's clause) when `budget` (trials; None:
    the default) cannot hold one group of `sweep` for `modules` (names, or None: not known),
    else None: (8, "the default sweep runs 4 trials per module; budget 1 cannot hold one
    module's 4 trials") for two modules. The rule and its words are `check_budget`'s."""
    if not sweep:
        return None
    asked: list[int] = []

    def ask(need=None, **_changed):  # check_budget's `again`: the budget it would suggest
        asked.append(need)
        return ""

    try:
        check_budget(sweep, budget, again=ask, modules=modules)
    except OptionError as e:
        return asked[0], str(e).split(": ", 1)[0]
    return None


def check_sweep_call(modules, rows, *, sweep: str | None, budget, source: str = "ranking",
                     again=None, rank_command: str | None = None, selected=None):
    """`check_modules(modules, rows, …)` and `check_budget(sweep, budget, …)` in one, for a
    call of a sweep: the modules' names in `rows`' order, or one refusal naming the faults
    of both, its way on holding both. When the modules are refused with the names meant and
    `again` (the modules' way on is then the whole call), that call carries the budget the
    names meant need (`budget_fault`), said after it: "run `hubensemble tune --run R --sweep
    default --budget 8 --modules m0 m1` (--budget 8: the default sweep runs 4 trials per
    module; budget 1 cannot hold one module's 4 trials)"; else a budget fault is named after
    the modules' way on, in check_budget's words without `again` ("; and the default sweep
    … pass --budget 4 or more …"): which modules are meant is the caller's choice. The
    budget alone is refused as `check_budget` refuses it (its `again` the call with the
    modules given). `rows` None (not known yet: a tune whose ranking cannot be read, said
    by its own refusal) checks the budget alone; `selected`: the modules the sweep tunes
    without --modules (tune: the ranking's selection; fit: None, not ranked yet).
    HubensembleError (the modules' fault) or OptionError (the budget's alone)."""
    asked: list[str] = []

    def held(budget_=None, **changed):  # the modules' way on: its budget holding them
        names = changed.get("modules") or selected
        fault = budget_fault(sweep, budget, names)
        asked.append("yes")
        if fault is None:
            return again(**changed)
        need, clause = fault
        return (f"{again(need, **changed)} "
                f"({option_word(f'--budget {need}', f'budget={need}')}: {clause})")

    names = None
    if rows is not None and modules:
        try:
            names = check_modules(modules, rows, source=source, rank_command=rank_command,
                                  again=None if again is None else held)
        except HubensembleError as e:
            fault = None if asked else budget_fault(sweep, budget, modules)
            if fault is None:
                raise
            try:
                check_budget(sweep, budget, modules=modules)  # its words, the flag alone
            except OptionError as words:
                raise HubensembleError(f"{e}; and {words}") from None
            raise
    if sweep:
        check_budget(sweep, budget, again=again,
                     modules=names if names else (modules or selected))
    return names
