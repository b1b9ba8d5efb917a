"""run.json's catalogue entries (its "modules": {module name: catalogue entry as JSON}, as
rank records them) read as ModuleSpecs: the one reader every stage after rank uses, so a
record edited by hand (an entry that is no object, an unknown field, a field of another
kind, "modules" that is no object) is refused in one line naming run.json, the module (and
the trial that asked for it) and the way on, wherever it is read. It was a ValueError or
AttributeError traceback in tune, export, distill and fit's plan (cost said it in words).
No TensorFlow.
"""

from __future__ import annotations

from hubensemble.errors import RunError, first_line
from hubensemble.handlehere import remember_recorded
from hubensemble.text import absolute, escaped


def _where(run) -> str:
    return escaped(absolute(run.meta_path))


def _rank_again(run) -> str:
    """The way to rank `run` again (`Run.rank_words`: its catalogue and data as run.json
    records them), with its --shard I/N (shard=(I, N)) when its ranking.json is a shard's
    (`Run.rank_command`): `rank merge` refuses a shard's run.json in these words, and the
    shard ranked again without it was a whole ranking, which the merge refuses."""
    from hubensemble.lockwords import call_verb

    try:
        shard = (run.ranking() or {}).get("shard")
    except (RunError, OSError):
        shard = None
    if not (isinstance(shard, list) and len(shard) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)):
        return run.rank_words()
    return f"{call_verb()} {run.rank_command(shard=tuple(shard))}"


def _of(name: str, trial) -> str:
    return f"module {name!r}" + (f" (trial {trial})" if trial is not None else "")


def catalogue_entries(run, modules=None) -> dict:
    """run.json's "modules" record of `run` (a `rundir.Run`; `modules`, when given, the
    record as the caller already read it): {name: entry}, {} when absent. Raises RunError
    naming run.json and the way on when it is no JSON object (a hand edit: a list was read as
    a run without modules)."""
    from hubensemble.fileio import json_kind

    if modules is None:
        modules = run.meta().get("modules")
    if modules is None:
        return {}
    if not isinstance(modules, dict):
        raise RunError(f"{_where(run)}: its \"modules\" record is {json_kind(modules)}, "
                       f"expected an object of catalogue entries by module name; restore "
                       f"run.json from a copy, or {_rank_again(run)} again")
    return modules


def readable_entries(modules) -> dict:
    """run.json's "modules" record `modules` (as read: any JSON value, None when absent) for
    a reader that goes on past a hand edit (command words, memory estimates, the report):
    {name: entry} of its entries that are JSON objects, {} when the record is no object. The
    stages that need an entry refuse the edit instead (`catalogue_entries`, `module_spec`);
    reading it as `modules or {}` was an AttributeError on a list or a string."""
    if not isinstance(modules, dict):
        return {}
    return {name: entry for name, entry in modules.items() if isinstance(entry, dict)}


def checked_entries(run, names, modules=None) -> dict:
    """`catalogue_entries` of `run`, each entry of a module in `names` (an iterable of module
    names) that it holds read as `module_spec` reads it: RunError (its words) for the first
    damaged one. A module without an entry is no refusal here (a pool copied without its
    run.json: the caller decides). For a stage that reads those entries as they are (the
    ensemble's shared backbones), where a damaged one silently counted as no entry."""
    entries = catalogue_entries(run, modules)
    for name in sorted(set(names) & set(entries)):
        module_spec(run, name, modules=entries)
    return entries


def module_spec(run, name: str, trial=None, *, modules=None):
    """The `catalogue.ModuleSpec` of module `name` in run.json's catalogue entries
    (`catalogue_entries`; `trial`, when given, is named as the candidate that asked for it).
    Raises RunError naming run.json (absolute), the module and trial and the way on when the
    entry is missing or damaged (not an object, an unknown field, a field of another
    kind)."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.fileio import json_kind

    entries = catalogue_entries(run, modules)
    if name not in entries:
        raise RunError(f"{_where(run)} has no catalogue entry for {_of(name, trial)}; "
                       f"{_rank_again(run)} again")
    entry = entries[name]
    try:
        if not isinstance(entry, dict):
            raise ValueError(f"{json_kind(entry)}, expected an object")
        spec = ModuleSpec.from_json(entry)
    except (ValueError, TypeError) as e:
        raise RunError(f"{_where(run)}: the catalogue entry of {_of(name, trial)} is damaged "
                       f"({first_line(e)}); restore run.json from a copy, or "
                       f"{_rank_again(run)} again") from None
    remember_recorded(spec.handle)  # a path gone is told "put the module back" (handlehere)
    return spec


def module_specs(run, modules=None) -> dict:
    """{name: `catalogue.ModuleSpec`} of every catalogue entry in run.json (`module_spec`'s
    reading and refusals, the first damaged entry named)."""
    entries = catalogue_entries(run, modules)
    return {name: module_spec(run, name, modules=entries) for name in entries}
