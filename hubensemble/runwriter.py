"""A stage function that writes into a run folder holds the run's lock (`rundir.Run.lock`,
RUN/.fit.lock) while it runs, from Python as the command line holds it for its command
(`cli`: `Run.log_file(lock=rundir.lock_command(args))`): a second writer, in this process's
command or another process, is refused at once naming the first, where two writers
interleaved their files (run_rank and run_ensemble from Python took no lock; only `fit`
and `write_report` did). Readers (`evaluate_model`, `predict`, `load_ranking`) take none.
Nested uses in the process that holds the lock (fit's stages, a command's function) are
no-ops. A distributed tune's chief and workers share the run: each holds a sweep lock of its
own instead (`writes_run`'s `member`; `sweeplock`), as on the command line, which writers
refuse and which refuses them. Before the lock, the call says when the stage may need
more memory than the process has (`memory.say_memory`), as the command line does before
TensorFlow loads. TensorFlow-free."""

from __future__ import annotations

import functools
import inspect
import os
from typing import Callable, ParamSpec, TypeVar

from hubensemble.fileio import missing_folders, remove_unused
from hubensemble.terminal import root_last_resort
from hubensemble.threads import old_objects_frozen
from hubensemble.winpaths import refusal_advice

_P = ParamSpec("_P")
_R = TypeVar("_R")


def bind_call(function, signature, args, kwargs, *, partial: bool = False):
    """`signature` (`inspect.signature(function)`) bound to a call's `args` and `kwargs`
    (bind_partial with `partial`). Raises TypeError naming `function` as Python's own call
    does ("merge_rankings() got an unexpected keyword argument 'k'"): a decorator's bind
    said it without the function's name; a mistyped keyword with the one it most likely
    mistypes (`check_keywords_known`)."""
    from hubensemble.errors import check_keywords_known

    check_keywords_known(function, signature, kwargs, args)
    try:
        return (signature.bind_partial if partial else signature.bind)(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{function.__name__}() {e}") from None


def writes_run(command: str | Callable[[dict], str | None], argument: str = "run_dir", *,
               create: bool = False,
               member: Callable[[dict], tuple[str | None, dict | None]] | None = None
               ) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorates a stage function whose `argument` names the run folder it writes: the call
    holds that run's lock for `command` ("rank", "ensemble", …; or a function of the call's
    bound arguments returning the command, None for no lock). With `create` (rank, merge:
    they make the run) the folder is made for the lock, and removed again when a refused call
    leaves nothing else in it (`fileio.remove_unused`); without it, as the command line's
    `--run`, only a folder holding a stage's results is locked (a mistyped one is the
    function's refusal). A folder argument of another type, empty or written as Windows writes
    paths (`winpaths`: "runs\\w" was made for the lock, then taken as a name that exists) is
    left to the function's own refusal (`stageargs.folder`), as is a folder holding files no
    stage wrote (`Run.check_folder_is_ours`: checked first, so no lock file lands in a folder
    of the user's). RunError when another process holds the lock (`Run.lock`). The signature stays
    the function's, for `inspect` and for type checkers (ParamSpec, PEP 612)."""
    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def call(*args, **kwargs):
            # old_objects_frozen: Keras' clear_session before each trial and Python's own
            # collections scan only what the stage made (a full scan: 0.15-0.25 s each).
            with root_last_resort(), old_objects_frozen():  # root: absl's basicConfig
                return _call(*args, **kwargs)

        def _call(*args, **kwargs):
            from hubensemble.rundir import UNUSED_ENTRIES, Run

            bound = bind_call(function, signature, args, kwargs, partial=True)
            bound.apply_defaults()
            folder = bound.arguments.get(argument)
            name = command(bound.arguments) if callable(command) else command
            if (name is None or not isinstance(folder, (str, os.PathLike))
                    or not os.fspath(folder) or os.path.isfile(folder)
                    or refusal_advice(os.fsdecode(folder))):  # else made for the lock: taken
                return function(*args, **kwargs)
            run = Run(folder)
            if not (create or run.holds_results()):
                return function(*args, **kwargs)
            run.check_folder_is_ours(argument, creating=create)
            if not run.fit_here():  # a fit's stage: the fit's own note covered it
                from hubensemble.memory import say_memory

                say_memory(name, run.path, bound.arguments)  # too little memory: before
            made = missing_folders(run.path)
            tuner, record = member(bound.arguments) if member else (None, None)
            try:
                with run.lock(name, tuner, record):
                    return function(*args, **kwargs)
            except BaseException:
                if made:  # a refused call leaves no folder it made only for the lock
                    remove_unused(made, UNUSED_ENTRIES)
                raise

        return call

    return decorate
