"""A stage's end: the run's report, when it has one, written again so that it shows the stage.

The report reads every stage's files (it imports `ensemble` and `rank`), so a stage that
imported it would close an import cycle: the writer is named here and resolved when a stage
ends, as hub resolves the zoo's resolver (`hub.resolvers._BUILTIN_PLUGINS`).
"""

from __future__ import annotations

import importlib
import logging

from hubensemble.errors import HubensembleError
from hubensemble.lockwords import run_words
from hubensemble.text import escaped

log = logging.getLogger(__name__)

#: The report's writer ("module:function"): `write_report(run_dir)` -> its ReportPaths.
REPORT_WRITER = "hubensemble.report.write:write_report"


def refresh_report(run_dir, shows: str):
    """The one rule of every stage that changes what the report shows (`rank`, `rank merge`,
    `tune`, `cost`, `ensemble`, `export`, `distill`, and `evaluate` writing
    RUN/robustness.json), called at its end, from the command
    line and from Python alike: a report the run has (RUN/report.md or report.html) is
    written again (`report.write_report`), so that it shows `shows` (text such as "the new
    ensemble"). It kept the run as it was before the stage, without a word (helper 112:
    `ensemble --budget 2`, the old members in it). Not inside a fit or demo of this process
    (`Run.fit_here`): fit writes the report once, at its end. Says where it went on the
    terminal while a command runs (`terminal.progress_line`) and in RUN/log.txt.

    Returns its ReportPaths (absolute report.md and report.html); None when the run has no
    report, inside a fit, or when it could not be written: a warning then says why and the
    `hubensemble report` command that writes it, and the stage's result is kept
    (HubensembleError and OSError are not raised)."""
    from hubensemble.rundir import Run
    from hubensemble.terminal import progress_line

    run = Run(run_dir)
    if run.fit_here() or not (run.report_md.exists() or run.report_html.exists()):
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
