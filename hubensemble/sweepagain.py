"""The whole command, or Python call, that runs a sweep again with another budget
(`tune_again`, `fit_again`: `sweeps.check_budget`'s `again`), in the caller's words, and a
tune call's profile as those words name it (`profile_name`). Apart from sweeps.py (pure
policy, imported by most of the package): these read the options table and the advice
helpers, which import it."""

from __future__ import annotations

import os

from hubensemble.text import absolute, shell, shell_word


def tune_again(run_dir, call: dict):
    """`check_budget`'s `again` for a tune call `call` (`run_tune`'s keywords,
    `options.kwargs_for("tune", args)`, its "sweep" resolved: `sweepwords.resumed_call`)
    on run `run_dir`: budget -> the call with that budget, its sweep named whatever the
    default (as `sweepwords.sweep_command` names it), each other option not at its default
    (`rerun.option_flags`), in the caller's words (`lockwords.command_words`): "`hubensemble
    tune --run /abs/RUN --sweep default --budget 4 --profile quick`", from Python
    "run_tune(run_dir='/abs/RUN', sweep='default', budget=4, profile='quick')". The function
    also takes other options anew by keyword (`sweeps.check_modules`' `again`:
    modules=["a"]), the budget then the call's."""
    from hubensemble import options
    from hubensemble.lockwords import command_words
    from hubensemble.rerun import option_flags, option_keywords

    sweep = call.get("sweep")
    table = [o for o in options.options_for(used_by="tune") if o.name in call
             and o.name != "sweep"]

    def command(budget: int | None = None, **changed) -> str:
        # `changed`: other options given anew (check_modules' modules=[…]); budget None: the call's
        now = {**call, **changed, **({"budget": budget} if budget is not None else {}),
               "profile": profile_name(call.get("profile"))}
        return command_words("tune", run_dir, flags=" ".join(filter(None, (
            f"--sweep {shell_word(sweep)}" if sweep else "", option_flags(now, table)))),
            keywords=", ".join(filter(None, (f"sweep={sweep!r}" if sweep else "",
                                             option_keywords(now, table)))))

    return command


def profile_name(profile):
    """A tune call's `profile` as its command words take it: a name (or None) as it is, a
    shipped Profile (`hyperrule.PROFILES`, the same definition) as its name, another
    Profile (made in Python) None: left out of the words, as `sweepwords.sweep_options`
    leaves a profile the command line cannot name."""
    from hubensemble.hyperrule import PROFILES

    if profile is None or isinstance(profile, str):
        return profile
    name = getattr(profile, "name", None)
    shipped = PROFILES.get(name) if isinstance(name, str) else None
    return name if shipped is not None and shipped == profile else None


#: fit's (and demo's) inputs that are no option of the table (FitOptions), as `fit_again`
#: takes them: (name, flag, its value's words on the command line, fit()'s keyword).
_FIT_INPUTS = (("export", "--export"), ("cache_dir", "--cache-dir"))


def _input_words(inputs: dict) -> tuple[str, str]:
    """(flags, keywords) of fit's inputs `inputs` ({"export": path or None, "cache_dir": path
    or None, "use_cache": bool, "restart": bool}, each absent: not given), paths absolute:
    ("--export /abs/exp --no-cache --restart", "export='/abs/exp', use_cache=False,
    restart=True"). The budget's whole command dropped them (a new user's --export went to
    RUN/export)."""
    flags, keywords = [], []
    for name, flag in _FIT_INPUTS:
        if inputs.get(name) is not None:
            flags.append(f"{flag} {shell(inputs[name])}")
            keywords.append(f"{name}={absolute(os.fspath(inputs[name]))!r}")
    if inputs.get("use_cache") is False:
        flags.append("--no-cache")
        keywords.append("use_cache=False")
    if inputs.get("restart"):
        flags.append("--restart")
        keywords.append("restart=True")
    return " ".join(flags), ", ".join(keywords)


def fit_again(out, call: dict, *, catalogue=None, data=None, demo: bool = False,
              inputs: dict | None = None):
    """`check_budget`'s `again` for a fit (or `demo`) into folder `out` with the options
    `call` (FitOptions' fields: `options.kwargs_for("fit", args)`, a FitOptions' vars), the
    catalogue files `catalogue` (None: FILE) and data `data` (DataArgs.to_json(), or a spec;
    None: SPEC): budget -> the whole command with that budget, each option not at its
    default (`rerun.option_flags`), every path absolute: "`hubensemble fit --catalogue
    /abs/c.yaml --data npz:/abs/d.npz --sweep probe --budget 4 --out /abs/run`"; from Python
    "hubensemble.fit(out='/abs/run', catalogue=…, data=…, sweep='probe', budget=4)" (its
    keywords; with data options, "data_args=…": the caller's own DataArgs, kept), and the
    `inputs` given that are no option (`_input_words`: --export, --cache-dir, --no-cache,
    --restart). The function also takes other options anew by keyword
    (`sweeps.check_modules`' `again`: modules=["a"]), the budget then the call's."""
    from hubensemble import options
    from hubensemble.lockwords import command_words
    from hubensemble.rerun import _data_flags, fit_keywords, option_flags, option_keywords

    table = options.options_for(record="fit")
    files = [catalogue] if isinstance(catalogue, (str, bytes)) else list(catalogue or [])
    args = {"spec": data} if isinstance(data, str) else dict(data or {})
    typed, given = _input_words(inputs or {})

    def join(*words, sep=" "):
        return sep.join(filter(None, words))

    def command(budget: int | None = None, **changed) -> str:
        # `changed`: other options given anew (check_modules' modules=[…]); budget None: the call's
        now = {**call, **changed, **({"budget": budget} if budget is not None else {})}
        if demo:
            return command_words("demo", out, flags=join(option_flags(now, table), typed),
                                 keywords=join(option_keywords(now, table), given, sep=", "))
        flags = join(
            "--catalogue " + (" ".join(shell(f) for f in files) or "FILE"),
            _data_flags(args) if args else "--data SPEC", option_flags(now, table), typed)
        return command_words("fit", out, flags=flags,
                             keywords=join(fit_keywords(files, args, now), given, sep=", "))

    return command


def python_fit_again(out, options, *, catalogue=None, data=None, data_args=None,
                     inputs: dict | None = None):
    """`check_budget`'s `again` for `pipeline.fit`'s own call into `out` with the FitOptions
    `options`, the `catalogue` it was given (paths, named; ModuleSpec records: FILE) and its
    `data` (a spec, with `data_args` a DataArgs or None; a Task: SPEC): `fit_again` of them,
    "call hubensemble.fit(out='/abs/run', catalogue='/abs/c.yaml', data='sklearn:digits',
    top_k=2, sweep='default', budget=4)", a folder: or npz: data's path absolute, with fit's
    `inputs` given (`fit_again`'s: export, cache_dir, use_cache, restart). fit from
    Python was told "pass budget=4 or more" alone, its other keywords left to type again,
    where the command line's said the whole command."""
    import dataclasses

    listed = catalogue if isinstance(catalogue, (list, tuple)) else [catalogue]
    from hubensemble.data.specs import absolute_spec

    files = [os.fspath(f) for f in listed if isinstance(f, (str, os.PathLike))]
    # A folder: or npz: path absolute, as out's and the catalogue's (fit_keywords), and as
    # DataArgs makes the command line's: it was told data='npz:task.npz'.
    spec = absolute_spec(os.fspath(data)) if isinstance(data, (str, os.PathLike)) else None
    args = None
    if spec is not None:
        args = {**(data_args.to_json() if dataclasses.is_dataclass(data_args) else {}),
                "spec": spec}
    call = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    call["profile"] = profile_name(call.get("profile"))  # a Profile object: its name or none
    return fit_again(out, call, catalogue=files if len(files) == len(listed) else None,
                     data=args, inputs=inputs)


def plan_again(call: dict):
    """`check_budget`'s `again` for a `plan_sweep` call `call` (its keywords: "sweep",
    "profile", "budget", "modules", "seed", "head_init", …): budget -> the call with that
    budget, "plan_sweep(ranking, specs, sweep='default', task=task, profile='quick',
    budget=4)", its positional arguments and task by their names and each keyword given
    other than its default (a Profile by its name: `profile_name`), run_dir absolute.
    plan_sweep was told "pass budget=4 or more" alone. The function also takes other
    keywords anew (`sweeps.check_modules`' `again`: modules=["a"], None to leave them out),
    the budget then the call's (none when it gave none)."""
    defaults = {"budget": None, "modules": None, "seed": 0, "batchnorm": "train",
                "head_init": None, "run_dir": None}
    kept = {k: v for k, v in call.items() if k in defaults and k != "budget"
            and v is not None and v != defaults[k]}
    if "run_dir" in kept:
        kept["run_dir"] = absolute(os.fspath(kept["run_dir"]))
    profile = profile_name(call.get("profile"))

    def command(budget: int | None = None, **changed) -> str:
        now = {k: v for k, v in {**kept, **changed}.items() if v is not None}
        budget = call.get("budget") if budget is None else budget
        words = [f"sweep={call.get('sweep')!r}", "task=task",
                 f"profile={profile!r}" if profile else "profile=PROFILE",
                 *(f"{k}={v!r}" for k, v in now.items() if k != "run_dir"),
                 *([f"budget={budget}"] if budget is not None else []),
                 *([f"run_dir={now['run_dir']!r}"] if "run_dir" in now else [])]
        return f"plan_sweep(ranking, specs, {', '.join(words)})"

    return command
