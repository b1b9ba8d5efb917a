"""The arguments of the public stage functions that are not options (run folders, export
folders, a Task, a catalogue), checked one way for every function before it reads or writes
anything: `fit`, `run_rank`, `run_tune`, `run_ensemble`, `export_ensemble`, `evaluate_model`,
`predict`, `write_report`, `run_distill`, `run_cost`, `merge_rankings`. Their options are
the options table's (`options.check_keywords`); these are the rest. A wrong type raises
TypeError naming the function, the argument, what it got and an example of what it takes
(run_rank(task=123) failed with "'int' object has no attribute 'train'", run_tune(None) with
"expected str, bytes or os.PathLike object, not NoneType"); an empty path an OptionError, as
the command line's flags refuse "" (`options.EMPTY_PATH`), and a path written as Windows
writes paths on Linux or macOS as its flags do (`windows_path`). TensorFlow-free."""

from __future__ import annotations

import os

from hubensemble.text import described

#: {argument name: an example of its value}, shown in the TypeError of a folder argument.
#: One entry per name: every stage function calls its folders by these names.
FOLDER_EXAMPLES = {
    "run_dir": "runs/digits",   # a run folder fit or rank wrote
    "out": "runs/digits",       # fit's new or resumed run folder
    "out_dir": "runs/digits",   # run_rank's / merge_rankings' run folder, export's folder
    "model_dir": "runs/digits/export",  # an export (or any SavedModel) folder
    "export": "runs/digits/export",
    "cache_dir": "~/.cache/hubensemble/embeddings",
}


def folder(function: str, name: str, value, *, optional: bool = False) -> str | None:
    """`value` (str or os.PathLike) as text, the folder argument `name` of `function` (its
    Python name, e.g. "run_rank"); None for None when `optional`. TypeError for another type
    (naming `function`, `name`, what it got and `FOLDER_EXAMPLES`' example); OptionError for
    "" (`options.EMPTY_PATH`: "" named the working folder, and a stage wrote its files
    there) and for a Windows-written path (`windows_path`), by the options table's rule
    when `name` is one of its options (cache_dir)."""
    from hubensemble import options

    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)) or isinstance(os.fspath(value), bytes):
        example = FOLDER_EXAMPLES.get(name, "path/to/folder")
        raise TypeError(f"{function}() {name} must be a folder path (str or os.PathLike)"
                        f"{' or None' if optional else ''}, got {described(value)}; e.g. "
                        f"{name}={example!r}")
    text = os.fspath(value)
    if name in options.BY_NAME:  # a table option (cache_dir): its rule, as its flag's
        options.check(name, text)
    elif not text:
        raise options.OptionError(f"{function}() {name} {options.EMPTY_PATH}, got ''" + (
            "; leave it out (None) for the default" if optional else ""))
    else:
        windows_path(function, name, text)
    return text


def windows_path(function: str, name: str, text: str) -> None:
    """OptionError naming `function`'s argument `name` when the path `text` (str) is written
    as Windows writes paths on Linux or macOS and names nothing here
    (`winpaths.windows_refusal`: fit(out="runs\\w") made a folder named "runs\\w", and
    fit(catalogue="C:\\cat.yaml") looked for that name in the working folder), with what
    to write instead; nothing otherwise (and always nothing on Windows)."""
    from hubensemble import options
    from hubensemble.winpaths import refusal_advice

    advice = refusal_advice(text)
    if advice:
        raise options.OptionError(f"{function}() {name}={text!r} {advice}")


def folders(function: str, name: str, values) -> list[str]:
    """`values`, a list or tuple of folder paths (`folder`, each), as texts: `merge_rankings`'
    shard folders. TypeError for one path alone (a str is not iterated as its characters) or
    anything else."""
    if not isinstance(values, (list, tuple)) or not values:
        raise TypeError(f"{function}() {name} must be a non-empty list of folder paths, got "
                        f"{described(values)}; e.g. {name}=['shards/0', 'shards/1']")
    return [folder(function, f"{name}[{i}]", v) for i, v in enumerate(values)]


def task(function: str, value, *, name: str = "task", optional: bool = False):
    """`value` when it is a `hubensemble.data.Task` (or None when `optional`), else TypeError
    naming `function` and the way on: `load_task` of a data spec (that of a path), or the
    recipe of a Task of arrays (`data.specs.TASK_RECIPE`)."""
    from hubensemble.data.specs import TASK_RECIPE, data_way
    from hubensemble.data.task import Task

    if isinstance(value, Task) or (value is None and optional):
        return value
    way = (data_way(value, loaded=True) if isinstance(value, (str, os.PathLike)) else
           "load one with hubensemble.load_task(SPEC), e.g. load_task('folder:PATH') "
           f"(docs/data.md), or for arrays in memory pass {TASK_RECIPE}")
    raise TypeError(f"{function}() {name} must be a hubensemble.data.Task"
                    f"{' or None' if optional else ''}, got {described(value)}; {way}")


def catalogue_specs(catalogue, function: str = "fit", name: str = "catalogue") -> list:
    """The ModuleSpec records of `function`'s `catalogue`: one catalogue YAML path (str or
    os.PathLike) or ModuleSpec, or a list or tuple of them (paths read by `load_catalogues`).
    TypeError for another type, CatalogueError for a file that is missing or malformed,
    OptionError for a path written as Windows writes paths (`windows_path`),
    HubensembleError when no module is listed."""
    from hubensemble.catalogue import (CATALOGUE_EXAMPLE, SHIPPED_EXAMPLE, ModuleSpec,
                                       load_catalogues)
    from hubensemble.errors import HubensembleError

    if isinstance(catalogue, (str, os.PathLike, ModuleSpec)):
        catalogue = [catalogue]
    wrong = ([catalogue] if not isinstance(catalogue, (list, tuple)) else
             [c for c in catalogue if not isinstance(c, (str, os.PathLike, ModuleSpec))])
    if wrong:
        raise TypeError(f"{function}() {name} must be a catalogue YAML path, a ModuleSpec, or "
                        f"a list of them (e.g. {name}={CATALOGUE_EXAMPLE!r}, or "
                        f"{SHIPPED_EXAMPLE}), got {type(wrong[0]).__name__} {wrong[0]!r}")
    specs = [c for c in catalogue if isinstance(c, ModuleSpec)]
    paths = [c for c in catalogue if not isinstance(c, ModuleSpec)]
    for path in paths:  # a list's item is named by the argument: all of them are paths
        if isinstance(os.fspath(path), str):
            windows_path(function, name, os.fspath(path))
    specs += load_catalogues(paths) if paths else []
    if not specs:
        raise HubensembleError("the catalogue lists no modules")
    return specs


def oracle_host_port(address, name: str = "oracle_address") -> tuple[str, str]:
    """(host, port) of an oracle address "HOST:PORT" (an IPv6 host in brackets, taken off;
    port 1 … 65535): Keras Tuner's chief's address, the one rule of --oracle and
    run_tune's `oracle_address`. OptionError (a ValueError) naming `name` (its flag on the
    command line) otherwise."""
    from hubensemble.lockwords import option_word
    from hubensemble.optionerror import OptionError

    host, sep, port = str(address).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise OptionError(f"{option_word('--oracle', name)}: oracle address {address!r} is "
                          "not HOST:PORT (e.g. 10.0.0.2:8000, or 127.0.0.1:8000 on one "
                          "machine)")
    return host, port


def check_tuner_id(tuner_id, name: str = "tuner_id") -> None:
    """A Keras Tuner id (`sweeplock.TUNER_ID_RE`: chief, or tuner0, tuner1, …): the one rule
    of --tuner-id and run_tune's `tuner_id`. OptionError (a ValueError) naming `name` (its
    flag on the command line) otherwise."""
    from hubensemble.lockwords import option_word
    from hubensemble.optionerror import OptionError
    from hubensemble.sweeplock import TUNER_ID_RE

    if not TUNER_ID_RE.fullmatch(str(tuner_id)):
        raise OptionError(f"{option_word('--tuner-id', name)}: tuner id {tuner_id!r}: use "
                          "'chief' for the process that serves the oracle and tuner0, "
                          "tuner1, … for the workers")


def check_distributed(tuner_id, oracle_address, environ=None) -> None:
    """tune's distributed-mode arguments (`tuner_id`, `oracle_address` "HOST:PORT") with Keras
    Tuner's variables in `environ` (default os.environ), by the rules
    `tune.distributed.kerastuner_env` applies them with after TensorFlow loads
    (`oracle_host_port`, `check_tuner_id`: OptionError naming the argument), refused before
    anything is read or written: the command line refused a bad --oracle or --tuner-id only
    after TensorFlow's import (12-18 s, ~690 MB), run_tune after it had made the run's lock
    files and log. HubensembleError for an id without an address (flag or
    $KERASTUNER_ORACLE_IP) or an address without an id, and $KERASTUNER_ORACLE_IP without
    $KERASTUNER_ORACLE_PORT. TensorFlow-free."""
    from hubensemble.errors import HubensembleError
    from hubensemble.lockwords import option_word

    env = os.environ if environ is None else environ
    if oracle_address:
        oracle_host_port(oracle_address)
    if tuner_id:
        check_tuner_id(tuner_id)
    has_ip = bool(oracle_address) or "KERASTUNER_ORACLE_IP" in env
    oracle = option_word("--oracle HOST:PORT", "oracle_address='HOST:PORT'")
    if has_ip and not oracle_address and "KERASTUNER_ORACLE_PORT" not in env:
        raise HubensembleError("KERASTUNER_ORACLE_IP is set but KERASTUNER_ORACLE_PORT is "
                               f"not; pass {oracle}")
    if has_ip and not tuner_id and "KERASTUNER_TUNER_ID" not in env:
        raise HubensembleError("a distributed sweep needs "
                               f"{option_word('--tuner-id', 'tuner_id')} (chief on the "
                               "process serving the oracle, tuner0, tuner1, … elsewhere)")
    if tuner_id and not has_ip:
        given = option_word(f"--tuner-id {tuner_id}", f"tuner_id={tuner_id!r}")
        raise HubensembleError(f"{given} needs {oracle} (the chief's address)")
