"""A run's recorded options in the words the user types (command-line flags, or a Python
call's keywords) and the commands built from them that start the run again or go on from it
(`start_again`, `fit_command`), for the way-on advice of refusals and reports.

The command to start again depends on the command run (only `fit --restart` discards a whole
run; `tune --restart` starts one sweep over) and on what the folder holds. Every path is
written absolute, so that a command runs pasted in any folder. No TensorFlow.
"""

from __future__ import annotations

import os
import shlex

from hubensemble import formats, options
from hubensemble.lockwords import command_words, on_command_line, option_word
from hubensemble.text import absolute, shell

#: DataArgs fields that are no option of the command line (`label_fn`: Python only).
_NOT_OPTIONS = ("reloadable",)


def _keyword(flag: str) -> str:
    """The load_task / DataArgs keyword of a data option's `flag` ("--data-seed": "seed",
    "--data": "spec")."""
    return {"--data": "spec", **{o.cli_flags[0]: o.kw for o in options.options_for(
        record="data")}}.get(flag, flag)


def _changed_options(was: dict, now: dict) -> list:
    flags = {"spec": "--data", **{o.kw: o.cli_flags[0] for o in options.options_for(
        record="data")}, "label_fn": "label_fn"}
    defaults = {o.kw: o.default for o in options.options_for(record="data")}
    found = []
    for key, flag in flags.items():
        if key in _NOT_OPTIONS or key not in now:
            continue
        # A field an older record lacks was its default then (`DataArgs.from_json`).
        old = was.get(key, defaults.get(key))
        if _normal(old) != _normal(now[key]):
            found.append((flag, old, now[key]))
    return found


def _normal(value):
    # JSON has no tuples: a split override ("--split") reads back as lists.
    return value if not isinstance(value, dict) else {k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in value.items()}


def shown(value) -> str:
    """A recorded or given option value as a refusal shows it, in the words typed on the
    command line (so that it can be passed back): 'unset' for None, a list as its items
    (an option of several values: "--modules a b"), a string shell-quoted only when it needs
    it, anything else as str ("--data-seed 0 -> 1", "--budget unset -> 8", "--profile quick
    -> cpu"). A Python repr ("'quick'", "['m0']") was neither (a new-user check)."""
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return " ".join(shlex.quote(str(v)) for v in value) or "none"
    return shlex.quote(value) if isinstance(value, str) else str(value)


def _as_flag(flag: str, value) -> str:
    """The command-line words that give `flag` the recorded `value` (a path absolute:
    `_word`)."""
    if flag == "label_fn":
        return f"label_fn={value!r} (from Python)"
    if flag == "--split":
        return " ".join(f"--split {shlex.quote(f'{k}={v}')}" for k, v in (value or {}).items()
                        ) or "no --split"
    if isinstance(value, bool):
        if flag == "--dedupe":
            return "--dedupe" if value else "no --dedupe"
        return flag if value else "--no-" + flag[2:]
    if value is None:
        return f"no {flag}"
    return f"{flag} {_word(flag, value)}"


def _word(flag: str, value) -> str:
    """`value` of `flag` as one shell word of advice (pasted into a shell: a path with a
    space): a path-valued option's (options.PATH_METAVARS) absolute, and a folder: or npz:
    spec's path, for advice runs from any working folder (`text.shell`)."""
    from hubensemble.data.specs import absolute_spec

    if flag == "--data":
        return shlex.quote(absolute_spec(str(value)))
    if any(flag in o.cli_flags and o.metavar in options.PATH_METAVARS
           for o in options.OPTIONS):
        return shell(str(value))
    return shlex.quote(str(value))


def start_again(where, meta: dict, command: str | None = None, *,
                args: dict | None = None, now: dict | None = None) -> str:
    """How to start the run in folder `where` again, as words after "or" that work for the
    user of `command` ("fit", "rank", ...; None: a later stage, none of which takes
    --restart): a fit passes --restart; any other command is given the whole command line,
    `hubensemble fit --restart … --out WHERE` for a fit's folder (or one whose run.json is
    unreadable, `meta` {}: fit --restart clears it unread), else `hubensemble rank … --out
    NEW` (stages run one by one: no command discards their folder). "" for `rank` on a
    folder without a fit: "a new --out folder", which its refusal names, is then the way.
    `args`: the data options to name (DataArgs.to_json; default: run.json's data "args").
    `now`: the options of the refused call ({option name: value}, e.g. {"profile": "cpu"}),
    which replace the recorded ones in the command: it then starts the run the call asked
    for (it repeated the recorded --profile quick after `tune --profile cpu` was refused for
    it, and the pasted fit was refused again)."""
    if command == "fit":  # (tune's --restart starts one sweep over, not the run)
        return (f"pass {option_word('--restart', 'restart=True')} to discard the results in "
                f"{where}")
    fit = "fit" in meta or not meta
    if command == "rank" and not fit:
        return ""
    if not on_command_line():
        return _start_again_call(where, meta, fit, args=args, now=now)
    if fit:
        command = fit_command(where, meta, restart=True, args=args, now=now)
        return ("fit it again from the start, discarding its results: `"
                f"{command}`" + ("" if _fit_options(meta)
                                 else " with your other fit options"))
    if args is None:
        args = _recorded_args(meta)
    words = f"--catalogue {_catalogue_files(meta)} {_data_flags(args or {})}"
    typed = option_flags(now or {}, options.options_for(command="rank", record="fit"))
    return (f"rank into a new folder and go on from there: `hubensemble rank {words}"
            f"{' ' + typed if typed else ''} --out NEW` with your other rank options")


def moved_data_way(where, meta: dict, spec: str) -> str:
    """The way on for a run whose recorded folder: or npz: `spec` names a path that is gone
    (the data moved, or the run was copied to where the data lives elsewhere), as words
    after "; ": a fit's run (`meta` has "fit") is told the fit that records the new place
    and reuses every finished stage (`fit_command` without --restart, NEW_PATH for the
    path: the same content keeps the run's data fingerprint; `resume.check_inputs`), a run
    of stage commands to put the data back. "" for a spec of another kind, or whose path
    exists (another reason the load failed). The stage commands said only "no such file;
    check the path", and take no --data to give another (a new-user check)."""
    from hubensemble.data.specs import _local_path

    local = _local_path(spec)
    if local is None or os.path.lexists(os.path.expanduser(local[1])):
        return ""
    if "fit" not in meta:
        return f"if the data moved, put it back at {local[1]}"
    if not on_command_line():  # the whole call, as the command line's (it named no call)
        keywords = fit_keywords(_catalogue_list(meta), {
            **_recorded_args(meta), "spec": f"{local[0]}:NEW_PATH"}, _fit_options(meta))
        return (f"if the data moved, give fit its new place (NEW_PATH), which it records, "
                f"going on from the run's finished stages: call "
                f"{command_words('fit', where, keywords=keywords)}")
    args = {**_recorded_args(meta), "spec": spec}
    command = fit_command(where, meta, restart=False, args=args)
    typed = f"--data {_word('--data', spec)}"
    if typed not in command:
        return ""
    new = command.replace(typed, f"--data {local[0]}:NEW_PATH", 1)
    return (f"if the data moved, give fit its new place (NEW_PATH), which it records, going "
            f"on from the run's finished stages: `{new}`")


def fit_again(where, meta) -> str:
    """The whole fit that goes on from run folder `where` (run.json `meta`: any value), in the
    caller's words (`lockwords.on_command_line`): "`hubensemble fit --catalogue /abs/c.yaml
    --data sklearn:digits --profile quick --budget 4 --out /abs/RUN`" (`fit_command`, no
    --restart: every finished stage is reused), else "hubensemble.fit(out='/abs/RUN',
    catalogue='/abs/c.yaml', data='sklearn:digits', profile='quick', budget=4)"
    (`fit_keywords`); "" for a run no fit made (its stages ran one by one). The way on of a
    module moved (`catalogue_here.moved_hint`): "run `hubensemble fit …` again" was retyped
    without --budget 4 --profile quick and refused as other options, whose way on
    (--restart) discarded every trial because a folder moved (new user 492)."""
    if not isinstance(meta, dict) or "fit" not in meta:
        return ""
    if on_command_line():
        return f"`{fit_command(where, meta, restart=False)}`"
    return command_words("fit", where, keywords=fit_keywords(
        _catalogue_list(meta), _recorded_args(meta), _fit_options(meta)))


def fit_keywords(files, args: dict, now: dict) -> str:
    """fit's keywords after out= for catalogue `files` (absolute paths; []: FILE), data
    `args` (DataArgs.to_json(); no spec: SPEC) and fit options `now` ({name: value}, each not
    at its default said): "catalogue='/abs/c.yaml', data='npz:/abs/d.npz', data_args=…,
    top_k=2" ("data_args=…" when the data has options other than its spec: the caller's own
    DataArgs). The one wording of a fit call (`sweepagain.fit_again`, `moved_data_way`)."""
    paths = [absolute(os.fspath(f)) for f in files]
    spec = args.get("spec")
    return ", ".join(filter(None, (
        f"catalogue={(paths[0] if len(paths) == 1 else paths)!r}" if paths
        else "catalogue=FILE", f"data={spec!r}" if spec else "data=SPEC",
        "data_args=…" if _data_flags(args).count(" --") else "",
        option_keywords(now, options.options_for(record="fit")))))


def rank_inputs(meta, ranked=()) -> dict:
    """The inputs of `hubensemble rank` (or run_rank) for the run whose run.json is `meta`
    (any value: a damaged one, or {}, as none), as `lockwords.command_words`' flags and
    keywords: "--catalogue /abs/c.yaml --data sklearn:digits" and "specs=load_catalogue(
    '/abs/c.yaml'), task=load_task('sklearn:digits')", from its catalogue files
    (`_catalogue_files`: fit's record, else its entries' sources, else those of `ranked`,
    the ranking's rows' "source" values), data options (`_data_flags`) and the run's rank
    options not at their default: a fit's (run.json fit.options: "--top-k 2"), else those
    run.json's "rank" section records (`recorded_rank_options`: a run of rank alone); without
    them the command wrote a ranking of another selection, top-k 15, than the run's;
    FILE and SPEC for what neither records (lockwords.RANK_INPUTS). The way on of a
    "modules" record edited by hand said FILE and SPEC where the run named both."""
    meta = meta if isinstance(meta, dict) else {}
    args = _recorded_args(meta) or {}
    files = _catalogue_list(meta) or (_source_files(ranked) if ranked else [])
    catalogue = (repr(files if len(files) > 1 else files[0]) if files else "FILE")
    task = "load_task(SPEC)" if _from_python(args) else load_task_words(args)
    table = options.options_for(command="rank", record="fit")
    own = _fit_options(meta) or recorded_rank_options(meta.get("rank"))
    flags, keywords = option_flags(own, table), option_keywords(own, table)
    return dict(flags=f"--catalogue {' '.join(map(shell, files)) or 'FILE'} {_data_flags(args)}"
                + (f" {flags}" if flags else ""),
                keywords=f"specs=load_catalogue({catalogue}), task={task}"
                + (f", {keywords}" if keywords else ""))


def recorded_rank_options(record) -> dict:
    """{option name: value or None} of the rank options a ranking record holds (ranking.json,
    or run.json's "rank" section, its copy: "metric", "k", "selection" {"rule", "top_k",
    "threshold", "max_k"}, "profile" by name); any other value, a hand edit, as {}. The one
    reading of it for `rank.rundefaults.kept_options` (what `rank` of a run folder keeps) and
    `rank_inputs` (the rank command that writes a damaged ranking again)."""
    record = record if isinstance(record, dict) else {}
    selection = record.get("selection") if isinstance(record.get("selection"), dict) else {}
    profile = record.get("profile")
    return {"metric": record.get("metric"), "k": record.get("k"),
            "greedy": selection.get("rule") == "greedy" if selection else None,
            **{name: selection.get(name) for name in ("top_k", "threshold", "max_k")},
            "profile": profile if isinstance(profile, str) else None}


def ranked_sources(run_dir) -> list:
    """The "source" ("FILE:LINE") of each row of run `run_dir`'s ranking.json, for
    `rank_inputs`; [] when it cannot be read (a damaged ranking is said where it is read)."""
    from hubensemble.fileio import read_json

    try:
        rows = read_json(os.path.join(os.fspath(run_dir), formats.RANKING_JSON))["modules"]
        return [str(r["source"]) for r in rows if isinstance(r, dict) and r.get("source")]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _start_again_call(where, meta: dict, fit: bool, *, args, now) -> str:
    """`start_again`'s words for a Python caller: the fit(...) or run_rank(...) call, with
    the keywords a call takes for what the command line's words give."""
    if args is None:
        args = _recorded_args(meta)
    args = args or {}
    files = _catalogue_list(meta)
    catalogue = f"catalogue={files if len(files) > 1 else files[0]!r}" if files else (
        "catalogue=FILE")
    data = "SPEC" if _from_python(args) else repr(args["spec"])
    loads = "" if _from_python(args) else ", ".join(
        f"{_keyword(flag)}={value!r}" for flag, _, value in _changed_options({}, args)
        if flag != "--data")
    if fit:
        recorded = {**(_fit_options(meta) or {}), **(now or {})}
        own = ", ".join(f"{o.name}={value!r}" for o, value in _differing(
            recorded, options.options_for(record="fit")))
        export = _export_record(meta)
        out = _export_outside(where, export)
        export = f"export={absolute(out)!r}" if out else ""
        words = ", ".join(w for w in (
            catalogue, f"data={data}", f"data_args=DataArgs({data}, {loads})" if loads else "",
            "restart=True", export, own) if w)
        return ("fit it again from the start, discarding its results: "
                f"{command_words('fit', where, keywords=words)}"
                + ("" if _fit_options(meta) else
                   " with your other fit options"))
    task = f"task={load_task_words(args)}"
    typed = option_keywords(now or {}, options.options_for(command="rank", record="fit"))
    words = (f"out_dir=NEW, specs=load_catalogue({catalogue.split('=', 1)[1]}), {task}"
             + (f", {typed}" if typed else ""))
    return (f"rank into a new folder and go on from there: run_rank({words}) with your other "
            "rank options")


def _fit_options(meta: dict) -> dict:
    """run.json's (`meta`) "fit" -> "options" ({} when it holds none, or a value edited by
    hand into no JSON object: the words then say "with your other fit options"; fit itself
    refuses such a record, `resume.fit_record`)."""
    fit = meta.get("fit") if isinstance(meta, dict) else None
    recorded = fit.get("options") if isinstance(fit, dict) else None
    return recorded if isinstance(recorded, dict) else {}


def _export_record(meta: dict) -> dict:
    """run.json's (`meta`) record of fit's export stage ("stages" -> "export" -> "record"),
    else fit's own record of its --export ("fit" -> "export", `exportrecord.export_record`'s
    shape, kept before any stage runs: a fit refused or stopped before its export stage
    named no --export, and its pasted command exported into RUN/export); {} when neither
    holds one or a value edited by hand into no JSON object (the fit command's words then
    name no --export; `stagerecords.stage_records`, which rerun cannot import without a
    cycle, warns of it when a stage reads it)."""
    stages = meta.get("stages") if isinstance(meta, dict) else None
    export = stages.get("export") if isinstance(stages, dict) else None
    record = export.get("record") if isinstance(export, dict) else None
    if not isinstance(record, dict):
        fit = meta.get("fit") if isinstance(meta, dict) else None
        record = fit.get("export") if isinstance(fit, dict) else None
    return record if isinstance(record, dict) else {}


def fit_command(where, meta: dict, *, restart: bool, args: dict | None = None,
                now: dict | None = None) -> str:
    """The `hubensemble fit` command line of the fit whose folder `where` holds run.json
    `meta` (a dict): its catalogue files, data options (`args`, default run.json's data
    "args"), its own options (run.json fit.options, `_fit_flags`) and export folder; with
    --restart when `restart` (start again) and without it to go on (a fit resumes: its
    finished stages and trials are reused). `now` ({option name: value}) replaces recorded
    fit options (`start_again`). Values a command line cannot give are FILE / SPEC; every
    path is absolute, so that the command runs pasted in any folder."""
    if args is None:
        args = _recorded_args(meta)
    words = f"--catalogue {_catalogue_files(meta)} {_data_flags(args or {})}"
    # The fit's own options (run.json fit.options) and export folder: without them the
    # pasted command started another fit (a new-user check: cpu and --top-k 15, where the
    # run was --profile quick --top-k 2).
    recorded = _fit_options(meta)
    own = _export_record(meta)
    extra = [_fit_flags({**(recorded or {}), **(now or {})})]
    if out := _export_outside(where, own):
        extra.append(f"--export {shell(out)}")
    flags = "".join(f" {w}" for w in extra if w)
    # Every path absolute (text.shell): pasted in another folder, a relative --out or
    # --catalogue named another run folder, or no file.
    return (f"hubensemble fit{' --restart' if restart else ''} {words}{flags} --out "
            f"{shell(where)}")


def _export_outside(where, record) -> str | None:
    """The fit's --export folder outside run folder `where`, from the export stage's
    `record` (run.json's "export" as fit recorded it), None when it was the run's own or is
    not this folder's: a copy's record names the original's export, which the copy's fit
    wrote over (`exportrecord.recorded_export`)."""
    from hubensemble.exportrecord import recorded_export

    if not isinstance(record, dict) or record.get("in_run") is not None:
        return None
    return recorded_export(where, record)


def _fit_flags(recorded: dict) -> str:
    """`recorded` (run.json fit.options: FitOptions as JSON) as `fit` flags (`option_flags`:
    "--profile quick --top-k 2")."""
    return option_flags(recorded, options.options_for(record="fit"))


def _differing(recorded: dict, table):
    """(option, value) of each option of `table` whose `recorded` value is not its default
    and not None, in the table's order: what advice that repeats a recorded command names."""
    for o in table:
        value = recorded.get(o.name, o.default)
        default = list(o.default) if isinstance(o.default, tuple) else o.default
        if value != default and value is not None:
            yield o, value


def option_flags(recorded: dict, table) -> str:
    """`recorded` ({option name: value}) as command-line flags of the options `table`
    (optionrecord.Option rows), each not at its default and not None, in the table's order
    ("--profile quick --top-k 2"), a path absolute (`text.shell`); a value the command line
    cannot give (e.g. corruption names from Python) is left out. For advice that repeats a
    recorded command."""
    words = []
    for o, value in _differing(recorded, table):
        if o.action in ("store_true", "store_false"):
            if value is (o.action == "store_true"):
                words.append(o.cli_flags[0])
        elif o.nargs == "+" and isinstance(value, list):
            words.append(f"{o.cli_flags[0]} {shown(value)}")
        elif not isinstance(value, (list, dict)):
            path = o.metavar in options.PATH_METAVARS  # absolute, as all advice's paths
            words.append(f"{o.cli_flags[0]} {shell(value) if path else shown(value)}")
    return " ".join(words)


def option_keywords(recorded: dict, table) -> str:
    """`option_flags`' options as a Python call's keywords ("profile='quick', top_k=2"): the
    same advice for a caller of the stage function, who typed no flag; a path's value
    absolute (cache_dir='/abs/cache'), as `_word` makes its flag's: run_tune(…,
    cache_dir='cache') was told to call it again with 'cache', from any working folder."""
    return ", ".join(f"{o.kw}={_keyword_value(o, value)!r}"
                     for o, value in _differing(recorded, table))


def _keyword_value(option, value):
    """`value` of `option` in a Python call's advice: a path-valued option's
    (options.PATH_METAVARS) str or PathLike absolute, else as it is."""
    if option.metavar in options.PATH_METAVARS and isinstance(value, (str, os.PathLike)):
        return absolute(os.fspath(value))
    return value


def _from_python(args: dict) -> bool:
    """Whether the data of `args` (DataArgs.to_json) has no spec a command line can give: no
    spec, an in-memory task or a label function (the user must name the data: "SPEC")."""
    return not args.get("spec") or not args.get("reloadable", True) or bool(args.get("label_fn"))


def data_part(meta, key) -> dict:
    """run.json `meta`'s "data" `key` ("args" or "task") when it and the section are
    objects, else {} (none recorded, or damaged): the lenient `rundir.Run.data_section`
    (also `Run.data_part`), for readers that go on without it (these words of advice, which
    are also those of data_section's refusal, and the report); a stage that needs the
    section reads data_section, which refuses a damaged one by file and key. Here, not in
    rundir.py, since rundir imports this module."""
    data = meta.get("data") if isinstance(meta, dict) else None
    part = data.get(key) if isinstance(data, dict) else None
    return part if isinstance(part, dict) else {}


def _recorded_args(meta: dict) -> dict:
    return data_part(meta, "args")  # (damaged: as none)


def _data_flags(args: dict) -> str:
    """`args` (DataArgs.to_json) as command-line words: --data and each option not at its
    default; "--data SPEC" when there is no spec, or the data came from Python."""
    if _from_python(args):
        return "--data SPEC"
    return " ".join(_as_flag(flag, now) for flag, _, now in _changed_options({}, args))


def evaluate_data_flags(args: dict, *, in_run: bool) -> str:
    """The data words of `hubensemble evaluate` for an export of the run whose run.json data
    "args" are `args` (DataArgs.to_json), each after a space: "" when the export sits in the
    run (`in_run`: its parent folder) and the data can be loaded again, for evaluate then
    loads the run's data as the run did, with every option (evaluate's --data takes no
    --data-seed, --val-fraction …: a folder of class folders would be split by the defaults,
    or scored whole); else --data and --data-dir as recorded; " --data SPEC" when there is no
    spec or the data came from Python (`_data_flags`' rule). The report's advice said
    "--data SPEC" although the run knew its data (a new-user check)."""
    if _from_python(args):
        return " --data SPEC"
    if in_run:
        return ""
    return "".join(f" {_as_flag(flag, args[key])}" for key, flag in (
        ("spec", "--data"), ("data_dir", "--data-dir")) if args.get(key))


def load_task_words(args: dict) -> str:
    """The load_task call that loads the data of `args` (DataArgs.to_json, or any dict of its
    fields) again, as a Python caller writes it: "load_task('folder:/x', seed=3)", each
    option not at its default; "TASK" (a Task of that data) when no spec loads it
    (`_from_python`). Advice to a Python caller where the command line's is "--data …"."""
    if _from_python(args):
        return "TASK"
    loads = [f"{_keyword(flag)}={value!r}" for flag, _, value in _changed_options({}, args)
             if flag != "--data"]
    return f"load_task({', '.join([repr(args['spec']), *loads])})"


def _catalogue_files(meta: dict) -> str:
    """The catalogue files that the run's modules came from (their entries' FILE:LINE, from
    fit's record or run.json's modules), as --catalogue's words, when each is a file here;
    else FILE (a module given in Python, a record without sources, a file moved since)."""
    return " ".join(shell(f) for f in _catalogue_list(meta)) or "FILE"  # absolute


def _catalogue_list(meta: dict) -> list[str]:
    """`_catalogue_files`' files, absolute, in order; [] when one is not known here (a
    "modules" record edited into no object, `runspecs.readable_entries`, too)."""
    from hubensemble.runspecs import readable_entries

    fit = meta.get("fit") if isinstance(meta.get("fit"), dict) else {}
    sources = fit.get("catalogue") if isinstance(fit.get("catalogue"), list) else None
    # run.json's entries as a hand edit left them: a list or a string is no source (FILE)
    sources = sources or [m.get("source") for m in readable_entries(meta.get("modules")).values()]
    return _source_files(sources)


def _source_files(sources) -> list[str]:
    """The catalogue files (absolute, in order, once each) of catalogue entries' `sources`
    ("FILE:LINE"); [] when one is not a file here."""
    files = []
    for source in sources:
        path, _, line = str(source or "").rpartition(":")
        if not (path and line.isdigit() and os.path.isfile(path)):
            return []
        files.append(os.path.abspath(path))
    return list(dict.fromkeys(files))
