"""fit()'s own arguments checked before its run folder (`check_fit_arguments`: types,
alternatives among its options) and the word of its export folder in the caller's words
(`export_word`); split from `pipeline` (TensorFlow-free)."""

from __future__ import annotations

from hubensemble import options as options_table
from hubensemble.dataargs import DataArgs
from hubensemble.lockwords import option_word


def check_fit_arguments(*, options, data_args, restart, progress, use_cache, given,
                        fit_options: type) -> None:
    """TypeError naming fit()'s argument, its value and what to pass, for an `options` that
    is no FitOptions, a `data_args` that is no DataArgs (both may be None), or a `restart`,
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
    for name, value, kind in (("options", options, fit_options),
                              ("data_args", data_args, DataArgs)):
        if value is not None and not isinstance(value, kind):
            shown = (", ".join(f"{k}={v!r}" for k, v in value.items())
                     if isinstance(value, dict) and all(isinstance(k, str) for k in value)
                     else "…")
            way = (f"pass them as keywords, fit(…, {shown}), or options=FitOptions({shown})"
                   if kind is fit_options else
                   f"e.g. data_args=DataArgs(spec, {shown}) (hubensemble.rundir.DataArgs)")
            raise TypeError(f"fit() {name} must be a {kind.__name__} or None, got "
                            f"{type(value).__name__} {value!r}; {way}")
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


def export_word(export) -> str:
    """The word of fit's export folder in the caller's words (`lockwords.option_word`): its
    --export flag or `export` keyword when given (`export`: its value, None when not given),
    else the run folder's --out / `out`, in which RUN/export lies."""
    return option_word("--export", "export") if export else option_word("--out", "out")
