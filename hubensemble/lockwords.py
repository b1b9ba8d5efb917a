"""The way on of a command refused because another process holds its run folder's lock
(`rundir.Run.lock`): words that depend on the refused command's flags. TensorFlow-free."""

from __future__ import annotations

from hubensemble.text import shell


#: The commands whose run folder is their --out (a new folder is a new run); the others
#: (tune, ensemble, export, cost, distill, report) take the run as --run.
OUT_COMMANDS = ("fit", "demo", "rank", "rank merge")


def locked_advice(command: str | None, run_dir) -> str:
    """The way on for `command` ("fit", "ensemble", …; None: not known) refused because
    another process holds run `run_dir`'s lock (`Run.lock`): wait for it; a command that
    makes its run (OUT_COMMANDS) may also start a new one in another --out folder; one that
    takes --run runs again on the same run (text.shell: absolute, pasteable) once the lock is
    free. A copy of a run being written is not offered: it may copy half-written files. The
    refusal said "or use another --out folder" to `ensemble --run R`, which takes no --out
    (a new-user check)."""
    if command in OUT_COMMANDS:
        return "wait for it to end, or pass another --out folder (a new run)"
    if command:
        return (f"wait for it to end, then run `hubensemble {command} --run "
                f"{shell(run_dir)}` again")
    return "wait for it to end, then run your command again"
