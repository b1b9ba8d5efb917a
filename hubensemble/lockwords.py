"""Advice in the caller's words: a command and its flags on the command line, the stage
function and its keywords from Python (`command_line`, `option_word`, `command_words`,
`run_words`), and the way on of a command refused because another process holds its run
folder's lock (`locked_advice`). TensorFlow-free."""

from __future__ import annotations

import contextlib
import contextvars
import os

from hubensemble.errors import held_stops
from hubensemble.text import absolute, shell

#: Whether the running code serves a command line's command (`cli.main` sets it for the
#: command's duration); else a Python caller's stage function, whose refusals name its
#: keywords, not flags it never typed (`run_ensemble` was told to run `hubensemble ensemble
#: --run R` again, `fit(export=…)` to "pass another --export folder").
_COMMAND_LINE = contextvars.ContextVar("hubensemble_command_line", default=False)

#: The stage function a Python caller called for each command, and its run folder's keyword;
#: fit as the package's (`hubensemble.fit`, the README's): a bare "fit(…)" reads as Keras'.
PYTHON_CALLS = {"fit": ("hubensemble.fit", "out"), "demo": ("hubensemble.fit", "out"),
                "rank": ("run_rank", "out_dir"),
                "rank merge": ("merge_rankings", "out_dir"), "tune": ("run_tune", "run_dir"),
                "ensemble": ("run_ensemble", "run_dir"), "cost": ("run_cost", "run_dir"),
                "export": ("export_ensemble", "run_dir"), "distill": ("run_distill", "run_dir"),
                "report": ("write_report", "run_dir"), "evaluate": ("evaluate_model", "model_dir")}

#: The inputs of the commands that make a run, as `command_words` takes them (flags, keywords).
FIT_INPUTS = dict(flags="--catalogue FILE --data SPEC", keywords="catalogue=FILE, data=SPEC")
RANK_INPUTS = dict(flags="--catalogue FILE --data SPEC",
                   keywords="specs=load_catalogue(FILE), task=load_task(SPEC)")

#: The flag of each command's run folder (OUT_COMMANDS: --out; evaluate: --model).
_RUN_FLAGS = {"evaluate": "--model"}


@contextlib.contextmanager
def command_line():
    """While the block runs, refusals speak to a command line's user (flags, commands); the
    command line (`cli.main`) runs each command inside it."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:  # whole (errors.held_stops): a second Ctrl-C here left a notebook's later calls
        with held_stops():  # spoken to as a command line's (flags)
            _COMMAND_LINE.reset(token)


def on_command_line() -> bool:
    """Whether the running code serves a command line's command (`command_line`)."""
    return _COMMAND_LINE.get()


def option_word(flag: str, keyword: str) -> str:
    """`flag` ("--export") on the command line, else the Python keyword ("export")."""
    return flag if on_command_line() else keyword


#: The commands whose run folder is their --out (a new folder is a new run); the others
#: (tune, ensemble, export, cost, distill, report) take the run as --run.
OUT_COMMANDS = ("fit", "demo", "rank", "rank merge")


def locked_advice(command: str | None, run_dir) -> str:
    """The way on for `command` ("fit", "ensemble", …; None: not known) refused because another
    process holds run `run_dir`'s lock (`Run.lock`): wait for it; a command that makes its run
    (OUT_COMMANDS) may also start a new one in another --out folder; one that takes --run runs
    again on the same run (text.shell: absolute, pasteable) once the lock is free, "with your
    other options" (or arguments): the refused call's own options are not known here, and the
    plain command of a tune refused beside another resumed that other tune's sweep
    (`sweepwords.resumed_call`). A copy of a run being written is not offered: it may copy
    half-written files. The refusal said "or use another --out folder" to `ensemble --run R`,
    which takes no --out (a new-user check). Outside the command line (`on_command_line`), the
    words name the stage function and its keyword (`PYTHON_CALLS`): "then call
    run_ensemble(run_dir='/…/r') again", "or pass another out_dir (a new run)"."""
    if not on_command_line() and command in OUT_COMMANDS:
        function, keyword = PYTHON_CALLS[command]
        return f"wait for it to end, or pass {function}() another {keyword} folder (a new run)"
    if command in OUT_COMMANDS:
        return "wait for it to end, or pass another --out folder (a new run)"
    if command:  # the options it was given are not known here: a plain `tune --run RUN`
        # resumed the running tune's sweep, not the refused `tune --sweep hyper --budget 2`
        return (f"wait for it to end, then {run_words(command, run_dir)} again with your other "
                + option_word("options", "arguments"))
    return "wait for it to end, then run your command again"


def unwritable_advice(command: str | None, run_dir) -> str:
    """The way on, besides making it writable, for `command` ("tune", "rank", …; None: not
    known) whose run folder `run_dir` cannot be written or is blocked by a file
    (`fileio.check_dir_target` names why and puts "make it writable, or" before this), in
    the caller's words: for a command that takes --run, copy the run and run the command on
    the copy ("pass another --out / --run" was said to `tune --run R` on a read-only mount,
    where another run does not help, and tune takes no --out); a command that makes its run
    (OUT_COMMANDS) may start a new one in another --out folder, or copy the run it finds
    there. `report --run R` says the same (`preflight.check_report_folder`)."""
    copy = f"copy the run to a folder you can write (`cp -r {shell(run_dir)} COPY`)"
    python = not on_command_line() and command in PYTHON_CALLS
    function, keyword = PYTHON_CALLS.get(command, ("", ""))
    if command in OUT_COMMANDS:
        new = (f"pass {function}() another {keyword} folder" if python
               else "pass another --out folder") + " (a new run)"
        if not os.path.isfile(os.path.join(os.fspath(run_dir), "run.json")):
            return new
        again = f"{keyword}='COPY'" if python else "--out COPY"
        return f"{new}, or {copy} and pass {again}"
    if command in PYTHON_CALLS:
        again = (f"call {function}({keyword}='COPY')" if python else
                 f"run `hubensemble {command} {_RUN_FLAGS.get(command, '--run')} COPY`")
        return f"{copy} and {again}"
    return f"{copy} and go on there"


def command_words(command: str, run_dir=None, *, flags: str = "", keywords: str = "",
                  quoted: bool = True) -> str:
    """How the caller runs `command` ("tune", "rank merge"; PYTHON_CALLS) on run `run_dir`
    (None: no run named), in its own words: on the command line the command, quoted and
    pasteable ("`hubensemble tune --run /abs/RUN`", its run flag, then `flags`, e.g. "--
    student NAME"; for OUT_COMMANDS `flags` before --out RUN; without the backquotes when
    not `quoted`, for a caller that sets the command as code itself); from Python the stage
    function and its keywords ("run_tune(run_dir='/abs/RUN')", then `keywords`, e.g.
    "student='NAME'"). Advice in a refusal: run_ensemble(R) with no candidate was told to
    run `hubensemble tune --run R`, a command its caller never typed."""
    if not on_command_line() and command in PYTHON_CALLS:
        function, keyword = PYTHON_CALLS[command]
        args = [f"{keyword}={absolute(os.fspath(run_dir))!r}"] if run_dir else []
        return f"{function}({', '.join(args + ([keywords] if keywords else []))})"
    flag = _RUN_FLAGS.get(command, "--out" if command in OUT_COMMANDS else "--run")
    run = [flag, shell(run_dir)] if run_dir else []
    rest = [flags] if flags else []  # a new run's inputs before its --out, as typed
    words = rest + run if command in OUT_COMMANDS else run + rest
    line = " ".join(["hubensemble", command] + words)
    return f"`{line}`" if quoted else line


def run_words(command: str, run_dir=None, *, flags: str = "", keywords: str = "") -> str:
    """"run `hubensemble tune --run /abs/RUN`" on the command line, "call
    run_tune(run_dir='/abs/RUN')" from Python: `command_words` with its verb."""
    verb = call_verb() if command in PYTHON_CALLS else "run"
    return f"{verb} {command_words(command, run_dir, flags=flags, keywords=keywords)}"


def call_verb() -> str:
    """"run" (a command) on the command line, "call" (a function) from Python."""
    return "run" if on_command_line() else "call"
