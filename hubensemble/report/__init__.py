"""The run report: RUN/report.md and a self-contained RUN/report.html with embedded plots.

The sub-modules, one concern each:

* `runfiles` — what the report reads from a run directory (candidates through
  `hubensemble.candidate`, metrics through `hubensemble.metrics`) and the numbers derived
  from it (kNN score vs fine-tuned accuracy, Spearman's rho);
* `checks` — the kinds of the JSON values the report reads, checked first (damage named);
* `sections` — what each section says (`ensemblesections`: those on ensemble.json;
  `runsections`: those on run.json; `datarows`: the rows on a data load's files;
  `perclass`: the per-class accuracy rows and `confusion`; `labels`: the "Labels to check"
  section and its closing-table line, from `hubensemble.labelcheck`); `figures` — the
  matplotlib plots;
* `render` — the document model and its Markdown / HTML renderers;
* `write` — `write_report` and the demo's `summary_table` (a stage's end writes the report
  again through `hubensemble.refresh`).

Every public name is importable from ``hubensemble.report`` as before the split.
"""

from hubensemble.report.datarows import SHORT_REASON
from hubensemble.report.figures import RELIABILITY_BINS, reliability
from hubensemble.report.perclass import confusion
from hubensemble.report.render import (FIGURES_DIR, Bullets, Code, Figure, Inline, Section,
                                       Strong, Table, render_html, render_markdown)
from hubensemble.report.runfiles import RunFiles, knn_vs_finetuned, load_run, spearman
from hubensemble.report.sections import build_sections
from hubensemble.report.write import FIGURE_NAMES, ReportPaths, summary_table, write_report

__all__ = [
    "FIGURES_DIR", "FIGURE_NAMES", "RELIABILITY_BINS", "SHORT_REASON", "Bullets", "Code",
    "Figure", "Inline", "ReportPaths", "RunFiles", "Section", "Strong", "Table",
    "build_sections", "confusion", "knn_vs_finetuned", "load_run", "reliability", "render_html",
    "render_markdown", "spearman", "summary_table", "write_report",
]
