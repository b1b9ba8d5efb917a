"""A stage's end: its wall time recorded in run.json (`record_stage_time`), and the run's
report, when it has one, written again so that it shows the stage.

The report reads every stage's files (it imports `ensemble` and `rank`), so a stage that
imported it would close an import cycle: the writer is named here and resolved when a stage
ends, as hub resolves the zoo's resolver (`hub.resolvers._BUILTIN_PLUGINS`).
"""

from __future__ import annotations

import importlib
import logging
import os
import time

from hubensemble.errors import HubensembleError
from hubensemble.lockwords import run_words
from hubensemble.text import escaped

log = logging.getLogger(__name__)

#: The stage each command holding the run's lock (`Run.lock`) runs: its record in run.json's
#: "stages" (a merge writes rank's result, ranking.json).
STAGE_OF_COMMAND = {"rank": "rank", "rank merge": "rank", "tune": "tune", "cost": "cost",
                    "ensemble": "ensemble", "export": "export", "distill": "distill"}

#: The report's writer ("module:function"): `write_report(run_dir)` -> its ReportPaths.
REPORT_WRITER = "hubensemble.report.write:write_report"


def refresh_report(run_dir, shows: str):
    """The one rule of every stage that changes what the report shows (`rank`, `rank merge`,
    `tune`, `cost`, `ensemble`, `export`, `distill`, and `evaluate` writing
    RUN/robustness.json), called at its end, from the command
    line and from Python alike: a report the run has (RUN/report.md or report.html) is
    written again (`report.write_report`), so that it shows `shows` (text such as "the new
    ensemble"). It kept the run as it was before the stage, without a word (a new user's check:
    `ensemble --budget 2`, the old members in it). First the stage's wall time goes into
    run.json (`record_stage_time`), so that the report's "Time per stage" shows it. Not
    inside a fit or demo of this process (`Run.fit_here`): fit writes the report once, at
    its end, and records its stages' times itself. Says where it went on the
    terminal while a command runs (`terminal.progress_line`) and in RUN/log.txt.

    Returns its ReportPaths (absolute report.md and report.html); None when the run has no
    report, inside a fit, or when it could not be written: a warning then says why and the
    `hubensemble report` command that writes it, and the stage's result is kept
    (HubensembleError and OSError are not raised)."""
    from hubensemble.rundir import Run
    from hubensemble.terminal import progress_line

    run = Run(run_dir)
    if run.fit_here():
        return None
    record_stage_time(run)
    if not (run.report_md.exists() or run.report_html.exists()):
        return None
    module, _, name = REPORT_WRITER.partition(":")
    try:
        paths = getattr(importlib.import_module(module), name)(run.path)
    except (HubensembleError, OSError) as e:
        log.warning("the report was not written again (%s), so it does not show %s: %s",
                    escaped(e), shows, run_words("report", run.path))
        return None
    progress_line(f"report written again, so that it shows {shows}: {escaped(paths.html)} "
                  f"(and {paths.markdown.name})")
    return paths


def record_stage_time(run) -> tuple[str, float] | None:
    """Records the wall time of the stage ending now in `run` (a rundir.Run), run on its own
    (its command line, or its function from Python; fit records its stages itself,
    `pipeline._run_stages`), in run.json's "stages" (`stagerecords.mark_time`): the one place
    every stage's time is recorded however it ran, called at its end by `refresh_report`.

    Which stage, and since when: the run's lock this process holds (`Run.lock`, taken as the
    stage function is called, `runwriter.writes_run`, or by its command line before
    TensorFlow loads, `cli`), its command (`STAGE_OF_COMMAND`) and the moment the stage
    function entered it (`Run.work_started`: the stage's own work, not the command line's
    imports before it; else the moment it was taken: its holder file's modification time,
    written as it was taken, or its "since", to the second, when that file is not this
    holding's): seconds from then to now. evaluate, which
    takes no lock (it reads the export; its result is one file, RUN/robustness.json), by the
    seconds it measured itself (the file's "seconds", `evaluate.evaluate_model`). Returns
    (stage, seconds), or None when nothing was recorded: no run.json (nothing to add to), a
    command that runs no stage, a robustness.json without seconds, or run.json not
    written (a warning says why; the stage's result stands)."""
    from hubensemble import formats
    from hubensemble.fileio import owned_here, read_json
    from hubensemble.stagerecords import mark_time

    if not run.meta_path.is_file():
        return None
    lock = run.path / formats.FIT_LOCK
    held = owned_here(lock)
    if held is None:  # evaluate: no lock (every other stage function holds the run's)
        try:
            found = read_json(run.robustness_json)
        except (OSError, ValueError):
            return None
        seconds = found.get("seconds") if isinstance(found, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            return None
        stage, command = "evaluate", "evaluate"
    else:
        command = str(held.get("command"))
        stage = STAGE_OF_COMMAND.get(command)
        if stage is None:
            return None
        # From the stage function's own entry (`Run.work_started`): the command line took
        # the lock before TensorFlow loaded, seconds that are no stage's work.
        seconds = time.time() - (run.work_started() or _taken_at(lock, held))
    try:
        mark_time(run, stage, float(seconds), command)
    except (HubensembleError, OSError) as e:
        log.warning("%s's time was not recorded in %s (%s): the report's \"Time per stage\" "
                    "does not show it", stage, escaped(run.meta_path), escaped(e))
        return None
    return stage, float(seconds)


def _taken_at(lock, held: dict) -> float:
    """When this process took `lock` (`fileio.owned_lock`; `held`: its record), in seconds
    since the epoch: its holder file's modification time (`fileio.owner_file`, written as
    the lock was taken) when that lies within the second of the record's "since" (a time to
    the second, `text.time_stamp`), else "since"."""
    from hubensemble.fileio import owner_file
    from hubensemble.text import stamp_time

    since = stamp_time(held.get("since")).timestamp()
    try:
        written = os.stat(owner_file(os.path.realpath(lock))).st_mtime
    except OSError:
        return since
    return written if since <= written < since + 2 else since
