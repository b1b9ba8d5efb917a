"""Command-line helpers shared by the benchmark scripts: a bad argument is a one-line usage
error (exit 2) before any work, never a traceback minutes in nor a silent default.

    from benchargs import description, integer, names   # a sibling of the scripts

* `description(__doc__)`: the docstring's whole first paragraph for `--help` (its first line
  alone stopped mid-sentence);
* `integer(minimum, maximum=None)`: hubensemble's argparse type, "must be an integer >= 1,
  got '0'";
* `integers(minimum)`: a comma-separated list of such integers ("250,500");
* `number(above=None, minimum=None, maximum=None)`: a finite float in a range (nan and inf
  are refused: `float()` takes both);
* `names(choices, what)`: a comma-separated list of names, each one of `choices`;
* `option(name)`: a value of hubensemble's option `name`, checked by its own rule as the
  main parser checks it (`--sweep bogus` is refused as `fit --sweep bogus` is);
* `once(parser, flag, values)`: refuses a value given twice to a flag of several values;
* `folder_target`, `file_target`, `existing_folder`: paths checked as hubensemble's own
  commands check theirs (`hubensemble.fileio.check_dir_target` / `check_file_target`), so a
  file where a folder goes is refused now, not after the work that ends by writing there;
* `refuse(parser, check, *args)`: runs one of hubensemble's own checks (a data spec, a
  catalogue, a run folder) and turns its HubensembleError into a usage error;
* `command_logging()`: while a script runs, log records on stderr and refusals' words as a
  `hubensemble` command shows them (every script's ``if __name__ == "__main__":`` block runs
  in it).

No TensorFlow is imported here: `--help` and a refused argument answer at once.
"""

import argparse
import contextlib
import math
import os

from hubensemble.arguments import integer  # noqa: F401 - re-exported for the scripts
from hubensemble.errors import HubensembleError
from hubensemble.fileio import check_dir_target, check_file_target
from hubensemble.text import shell_word
from hubensemble.winpaths import refusal_advice


def description(doc: str) -> str:
    """The first paragraph of a script's docstring, on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def names(choices, what: str = "names"):
    """An argparse type: 'a,b' -> ['a', 'b'], each one of `choices` (at least one, no
    repeats), else "must be comma-separated <what> from a, b, got 'x'"."""
    choices = tuple(choices)

    def convert(text):
        items = [t.strip() for t in str(text).split(",")]
        if not all(items) or any(t not in choices for t in items) or len(set(items)) < len(
                items):
            raise argparse.ArgumentTypeError(
                f"must be comma-separated {what} from {', '.join(choices)} (each once), got "
                f"{text!r}")
        return items

    convert.__name__ = what
    return convert


def integers(minimum: int, *, unique: bool = True, what: str = "integers"):
    """An argparse type: '250,500' -> [250, 500], each an integer >= `minimum` (at least one;
    with `unique`, none twice), else "must be comma-separated integers >= 1 (each once), got
    '100,,200'". The order is kept; a script that needs them sorted sorts them."""

    def convert(text):
        items = [t.strip() for t in str(text).split(",")]
        try:
            values = [int(t) for t in items]
        except ValueError:
            values = None
        if (values is None or any(v < minimum for v in values)
                or (unique and len(set(values)) < len(values))):
            raise argparse.ArgumentTypeError(
                f"must be comma-separated {what} >= {minimum}"
                f"{' (each once)' if unique else ''}, got {text!r}")
        return values

    convert.__name__ = what
    return convert


def number(*, above: float | None = None, minimum: float | None = None,
           maximum: float | None = None, why: str = ""):
    """An argparse type: text -> a finite float > `above`, >= `minimum` and <= `maximum`
    (the bounds given), else "must be a number > 0 and finite, got 'nan'" + `why` (the
    options table's words, `optionrecord.Option.allowed`; "a finite number > 0" said it
    too). `float()` alone took 'nan' and 'inf', which compare False or True with every
    bound."""
    bounds = [f"> {above:g}" if above is not None else "",
              f">= {minimum:g}" if minimum is not None else "",
              f"<= {maximum:g}" if maximum is not None else ""]
    wanted = " and ".join(b for b in bounds if b)

    def convert(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or (above is not None and not value > above)
                or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            raise argparse.ArgumentTypeError(
                f"must be a number{' ' + wanted if wanted else ''} and finite, got "
                f"{text!r}{why}")
        return value

    convert.__name__ = "number"
    return convert


def option(name: str):
    """An argparse type: text -> the value of hubensemble's option `name` (e.g. "sweep"),
    checked by its own rule as the main parser checks it (`hubensemble.arguments`' type):
    "argument --sweep: must be a sweep …, got 'bogus'". Its own call of `options.check`
    named the option twice, once as the Python keyword ("argument --sweep: sweep must be
    …")."""
    from hubensemble import arguments, options

    return arguments._argparse_type(options.get(name))


def once(parser: argparse.ArgumentParser, flag: str, values) -> None:
    """A usage error when `values` (a flag of several values) holds one twice: a row or a
    column measured twice would be counted twice in the summaries."""
    twice = sorted({str(v) for i, v in enumerate(values or ()) if v in list(values)[:i]})
    if twice:
        parser.error(f"argument {flag}: {', '.join(twice)} given twice; give each once")


def local_path(text: str) -> str:
    """`text` with `~` expanded; ArgumentTypeError for a path written as Windows writes
    paths on Linux or macOS (`hubensemble.winpaths`: `--keep 'D:\\k'` made a folder of
    that name), with the path to write, as hubensemble's own path flags."""
    if refusal_advice(text):
        raise argparse.ArgumentTypeError(f"{shell_word(text)} {refusal_advice(text)}")
    return os.path.expanduser(text)


def folder_target(text: str) -> str:
    """An argparse type: a folder that exists or can be made there (`~` expanded), else the
    file in the way ("x is a file, not a folder; ...") or the folder not writable; a
    Windows-written path as `local_path`."""
    path = local_path(text)
    try:
        check_dir_target(path, "give a folder, or a path where one can be made")
    except HubensembleError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return path


def new_folder(text: str) -> str:
    """An argparse type for a script's --keep DIR (`keep_argument`): a folder that can be made
    (`folder_target`), absent or empty: an earlier run's runs and caches left there would be
    resumed or read, so the figures would not be those of a cold start."""
    path = folder_target(text)
    if os.path.isdir(path) and os.listdir(path):
        raise argparse.ArgumentTypeError(f"{text} is not empty: an earlier run's runs and "
                                         "caches there would be resumed, not measured cold; "
                                         "give a new or empty folder")
    return path


def keep_argument(parser: argparse.ArgumentParser) -> None:
    """Adds --keep DIR (`new_folder`): the script works in DIR and keeps it, else in a
    temporary folder it deletes at the end."""
    parser.add_argument("--keep", metavar="DIR", type=new_folder,
                        help="work in DIR, a new or empty folder, and keep it (default: a "
                             "temporary folder, deleted at the end)")


def file_target(text: str) -> str:
    """An argparse type: a file that can be written when the work ends (`~` expanded): not a
    folder, in a folder that exists and is writable (the scripts do not make folders for
    it); a Windows-written path as `local_path`."""
    path = local_path(text)
    parent = os.path.dirname(os.path.abspath(path))
    try:
        check_file_target(path, "give a file path in a writable folder")
    except HubensembleError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"the folder of {text} ({parent}) does not exist; "
                                         "create it first or give another path")
    return path


def existing_folder(text: str) -> str:
    """An argparse type: a folder that exists (`~` expanded), else "... does not exist" or
    "... is a file, not a folder"; a Windows-written path as `local_path`."""
    path = local_path(text)
    if not os.path.isdir(path):
        what = "is not a folder" if os.path.exists(path) else "does not exist"
        raise argparse.ArgumentTypeError(f"{text} {what}; give an existing folder")
    return path


def refuse(parser: argparse.ArgumentParser, flag: str, check, *args, **kwargs):
    """`check(*args, **kwargs)` (one of hubensemble's own refusals: `check_spec`,
    `load_catalogues`, `preflight.check_run`...), its result; its HubensembleError is a usage
    error "argument FLAG: <its message>" (exit 2), multi-line messages kept whole."""
    try:
        return check(*args, **kwargs)
    except HubensembleError as e:
        parser.error(f"argument {flag}: {e}")


@contextlib.contextmanager
def command_logging():
    """While the block runs, log records reach stderr as a `hubensemble` command's do
    (`hubensemble.terminal.terminal_log`, as tools/vtab.py's `main`): warnings and up, one
    line each ("WARNING hubensemble.tune.tuner: trial … failed: …; … (details in
    RUN/log.txt)"), tracebacks only in a run's log.txt. Without it, TensorFlow's first absl
    import called logging.basicConfig(): a failed trial printed "INFO:hubensemble.tune.train:
    …" with its traceback, then "WARNING:hubensemble.tune.tuner: …" (`bench_tune.py --steps
    5`). Refusals and advice speak to a command line's user too (`lockwords.command_line`:
    "`hubensemble ensemble --run R`", where a script's `--run` check told it to call
    run_ensemble(run_dir=…), a Python caller's words). Imports no TensorFlow; undone after
    the block."""
    from types import SimpleNamespace

    from hubensemble.lockwords import command_line
    from hubensemble.terminal import terminal_log

    with terminal_log(SimpleNamespace(quiet=False, verbose=False)), command_line():
        yield
