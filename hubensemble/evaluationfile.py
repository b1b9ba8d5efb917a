"""The evaluation file (`evaluate --out`, RUN/robustness.json): its writer, its reader and
the check of its target. Split from formats.py; what an evaluation records of its export
(`formats.export_identity`) stays there."""

from __future__ import annotations

import os

from hubensemble.errors import HubensembleError, RunError
from hubensemble.fileio import atomic_write_json, check_file_target, read_json
from hubensemble.text import absolute, shell


def write_evaluation(result: dict, path) -> str:
    """Writes an `evaluate_model` result as JSON at `path`, atomically; returns the path."""
    atomic_write_json(path, result)
    return os.fspath(path)


def read_evaluation(path) -> dict:
    """The dict `write_evaluation` wrote at `path`; RunError (naming the command that writes
    it) when the file is missing, unreadable or not an evaluation."""
    try:
        result = read_json(path)
    except FileNotFoundError:
        raise RunError(f"{path} is missing; {_evaluate_again(path, ' --corruptions')}"
                       ) from None
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); {_evaluate_again(path)} again") from None
    if not isinstance(result, dict) or "clean" not in result:
        raise RunError(f"{path} is not an evaluation written by hubensemble; "
                       f"{_evaluate_again(path)} again")
    return result


def _evaluate_again(path, flags: str = "") -> str:
    """How the caller writes the evaluation at `path` again, in its words (`lockwords`): "run
    `hubensemble evaluate --model RUN/export --out PATH`" on the command line, "call
    evaluate_model(model_dir=RUN/export, task=TASK), then write_evaluation(result, 'PATH')"
    from Python (it was told the command, which it never typed)."""
    from hubensemble.lockwords import on_command_line, run_words

    said = run_words("evaluate", flags=f"--model RUN/export{flags} --out {shell(path)}",
                     keywords="model_dir=RUN/export, task=TASK")
    if on_command_line():
        return said
    return f"{said}, then write_evaluation(result, {absolute(os.fspath(path))!r})"


def check_evaluation_target(path) -> None:
    """evaluate --out's check, before the evaluation: HubensembleError unless file `path` can
    be written (`fileio.check_file_target`) and is absent, empty or an earlier evaluation
    (`read_evaluation`). Any other file would be replaced by the results: `--out notes.txt`
    overwrote a user's notes without a word (a new-user check), as `export --out` refuses a
    folder that is not an export (`check_export_target`)."""
    hint = "choose another --out file"
    check_file_target(path, hint)
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except FileNotFoundError:
        return
    except OSError as e:
        raise HubensembleError(f"cannot read {path} ({e.strerror or e}); {hint}") from None
    if not head:
        return
    try:  # the peek keeps a large file of another kind from being parsed whole
        if head.startswith(b"{"):
            read_evaluation(path)
            return
    except RunError:
        pass
    raise HubensembleError(f"{path} exists and is not an evaluation written by hubensemble; "
                           f"refusing to replace it: {hint}, or delete it first")
