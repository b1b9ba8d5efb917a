"""`tune --restart`: a sweep started over. What a sweep wrote into its run folder is removed
(`restart_sweep`), nothing else: its candidates, Keras Tuner's state, its TensorBoard logs and
run.json's record of it. TensorFlow-free; `run_tune` calls it holding the run's lock, with
no process of a chief/worker sweep running (`runwriter.writes_run`)."""

from __future__ import annotations

import os
import shutil
from typing import Sequence

from hubensemble.candidate import stale_temp
from hubensemble.fileio import TEMP_MARKER
from hubensemble.rundir import Run
from hubensemble.lockwords import option_word
from hubensemble.restartcheck import check_modules_here
from hubensemble.text import counted, escaped
from hubensemble.tune.trained import FOLDER as TRAINED


def _live_temp(name: str) -> bool:
    """Whether a candidate's temp folder `name` may be written now: not a dead writer's
    (`candidate.stale_temp`, `candidate.clean_stale_temps`' rule)."""
    return not stale_temp(name)


def sweep_entries(run: Run, sweep: str) -> tuple[list, list]:
    """([paths sweep `sweep` wrote in run `run`], [temp folders of live writers, kept]): its
    candidates' folders (RUN/candidates/<sweep>-*, complete or not), the temp folders of
    its candidates whose writer has gone, Keras Tuner's state (RUN/tuner/<sweep>/), its
    trials' TensorBoard logs (RUN/tuner/tensorboard/<sweep>-*) and the trained weights a
    stop kept of its trials (RUN/tuner/trained/<sweep>-*: `tune.trained`)."""
    prefix, found, kept = f"{sweep}-", [], []
    for folder, temps in ((run.candidates, True), (run.tuner / "tensorboard", False),
                          (run.tuner / TRAINED, False)):
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder)):
            if name.startswith(prefix):
                found.append(folder / name)
            elif temps and name.startswith(TEMP_MARKER + prefix):
                (kept if _live_temp(name) else found).append(folder / name)
    if (run.tuner / sweep).exists():
        found.append(run.tuner / sweep)
    return found, kept


def restart_sweep(run: Run, sweep: str, trains: Sequence[str]) -> str:
    """Removes what sweep `sweep` wrote in run `run` (`sweep_entries`) and run.json's record
    of it ("tune" -> "sweeps" -> sweep), and returns the line that says so: "tune --restart:
    sweep seeds starts over: removed 4 candidate folders (seeds-0000-m, …), RUN/tuner/seeds
    (Keras Tuner's state), …" ("run_tune(restart=True): …" from Python:
    `lockwords.option_word`).
    The temp folder of a candidate another process writes now (on this host, alive; or of
    another host) stays, and the line names it. OSError when a file cannot be removed.
    RunError, nothing removed, when a module of `trains` (the module names the restarted
    call plans to train, every part's: `run_tune` passes its plans') is a local path with
    nothing there (moved or deleted: every trial would fail alike;
    `restartcheck.check_modules_here`, the put-back words). The modules of the candidates
    removed were checked instead: `tune --restart --modules m1`, leaving a moved m0 out on
    purpose, was refused."""
    found, kept = sweep_entries(run, sweep)
    said = option_word("tune --restart", "run_tune(restart=True)")  # the caller's words
    check_modules_here(run, trains, said)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    recorded = False

    def forget(meta):
        nonlocal recorded
        tune = meta.get("tune")
        if isinstance(tune, dict) and isinstance(tune.get("sweeps"), dict):
            # The last tune's own keys stay: they say which profile the run goes on at
            # (runprofile.run_profile), and this call records its own over them.
            recorded = tune["sweeps"].pop(sweep, None) is not None

    if run.meta_path.exists():
        run.modify(forget)
    candidates = [p.name for p in found if p.parent == run.candidates]
    words = [f"{counted(len(candidates), 'candidate folder')} ({', '.join(candidates[:3])}"
             f"{', …' if len(candidates) > 3 else ''})" if candidates else None,
             f"{escaped(run.tuner / sweep)} (Keras Tuner's state)"
             if run.tuner / sweep in found else None,
             "its trials' TensorBoard logs"
             if any(p.parent.name == "tensorboard" for p in found) else None,
             "the trained weights a stop kept"
             if any(p.parent == run.tuner / TRAINED for p in found) else None,
             f"its record in {escaped(run.meta_path)}" if recorded else None]
    words = [w for w in words if w]
    line = (f"{said}: sweep {sweep} starts over: removed {', '.join(words)}"
            if words else f"{said}: sweep {sweep} had written nothing in "
            f"{escaped(run.path)}; it starts from its beginning")
    if kept:
        line += (f"; kept {', '.join(p.name for p in kept)}, being written by another process "
                 "(removed by the next tune once it has gone)")
    return line
