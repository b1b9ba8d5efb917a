"""fit()'s own arguments checked before its run folder (`check_fit_arguments`: types,
alternatives among its options) and the word of its export folder in the caller's words
(`export_word`); split from `pipeline` (TensorFlow-free)."""

from __future__ import annotations

from hubensemble import options as options_table
from hubensemble.dataargs import DataArgs, as_data_args
from hubensemble.lockwords import option_word


def check_fit_arguments(*, options, restart, progress, use_cache, given,
                        fit_options: type) -> None:
    """TypeError naming fit()'s argument, its value and what to pass, for an `options` that
    is no FitOptions (or None; `data_args` is `fit_data_args`'), or a `restart`,
    `progress` or `use_cache` that is not True or False (numpy's bool too). Before: a dict
    of options or data_args stopped in dataclasses.replace ("replace() should be called on
    dataclass instances"), and restart='no' (a str, so true) discarded the run's results.
    OptionError for alternatives among the options typed (`given`, {name: value}: fit's
    keywords), as the command line refuses them (an argparse group: `Option.exclusive`):
    fit(top_k=5, threshold=0.1) selected by the threshold alone, and fit(threshold=0.1,
    greedy=True) was refused by rank after the run folder was made and the data loaded.
    None and False count as not given (the others' defaults); each of them is checked by its
    own rule first (fit(top_k=0, greedy=True) was told "choose one selection rule", not
    "top_k must be an integer >= 1"). `fit_options`: the FitOptions
    class (pipeline's, which imports this module)."""
    import numpy as np

    for name, value in (("restart", restart), ("progress", progress),
                        ("use_cache", use_cache)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"fit() {name} must be True or False, got {type(value).__name__} "
                            f"{value!r}")
    if options is not None and not isinstance(options, fit_options):
        shown = (", ".join(f"{k}={v!r}" for k, v in options.items())
                 if isinstance(options, dict) and all(isinstance(k, str) for k in options)
                 else "…")
        raise TypeError(f"fit() options must be a FitOptions or None, got "
                        f"{type(options).__name__} {options!r}; pass them as keywords, "
                        f"fit(…, {shown}), or options=FitOptions({shown})")
    typed = {n: v for n, v in (given or {}).items() if v is not None and v is not False}
    for name, value in typed.items():  # each its own rule first: top_k=0 is no rival rule
        if options_table.get(name).exclusive:
            options_table.check(name, value)
    for group in dict.fromkeys(options_table.get(n).exclusive for n in typed):
        rivals = [f"{n}={v!r}" for n, v in typed.items()
                  if group and options_table.get(n).exclusive == group]
        if len(rivals) > 1:
            raise options_table.OptionError(
                f"choose one {group} rule: {' or '.join(rivals)}, not " + (
                    "both; leave the other out" if len(rivals) == 2 else
                    "more than one; leave the others out"))


def fit_data_args(data, data_args, keywords: dict):
    """fit's DataArgs (or None) from its `data_args` (a DataArgs, a dict of its fields, or
    None) and its data option keywords `keywords` (`dataargs.data_keywords`: flip=False,
    data_seed=3, …), as `dataargs.as_data_args` makes it, started from the spec `data`;
    TypeError for keywords with a `data` Task, loaded already (load_task takes them), and
    for what as_data_args refuses, and for data_args whose spec is not `data` (fit loads
    `data`; the other was dropped without a word). `data` of another type: `data_args`
    unchanged (check_data names the data's type)."""
    from hubensemble.data import Task

    if isinstance(data, Task) and keywords:
        said = ", ".join(f"{k}={v!r}" for k, v in keywords.items())
        raise TypeError(f"fit() {said}: data options apply as fit loads the data from a spec; "
                        f"data is a Task, loaded already: pass them to load_task(spec, "
                        f"{said}), or fit(data=spec, {said})")
    if isinstance(data, Task):
        return as_data_args(data_args, base=lambda: DataArgs.of_task(data))
    if not isinstance(data, str):
        return data_args  # check_data refuses the data's type first
    args = as_data_args(data_args, keywords, base=lambda: DataArgs(spec=data))
    if args is not None and args.spec and args.spec != data:  # "": no spec of its own
        # fit loads `data`: another spec in data_args was dropped without a word (a new
        # user's DataArgs("folder:imgs2") trained on data="folder:imgs", stop 70).
        raise TypeError(f"fit() got data={data!r} and data_args' spec={args.spec!r}; fit "
                        f"loads data: give the data once, as data={args.spec!r} or with "
                        f"data_args' spec equal to it")
    return args


def export_word(export) -> str:
    """The word of fit's export folder in the caller's words (`lockwords.option_word`): its
    --export flag or `export` keyword when given (`export`: its value, None when not given),
    else the run folder's --out / `out`, in which RUN/export lies."""
    return option_word("--export", "export") if export else option_word("--out", "out")
