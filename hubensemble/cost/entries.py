"""cost's refusal of run.json's catalogue entries of its candidates' modules, before
TensorFlow (`check_modules`): out of cost/stage.py, which imports tune, so that the command
line's checks (`preflight.check_run`) import it without an import cycle through tune."""

from __future__ import annotations

from hubensemble.runspecs import catalogue_entries, module_spec


def check_modules(run_dir) -> None:
    """RunError, before TensorFlow loads, where `run_cost` refuses run.json's catalogue
    entries of the modules of run `run_dir`'s usable candidates (`runspecs.catalogue_entries`
    and `module_spec`, for each module's first candidate in trial order, as the stage reads
    them: its words): a damaged entry was said after TensorFlow's import (16.6 s, 687 MB on
    a 2-core machine) though run.json alone says it. Nothing when no candidate is usable
    (`candidate.require_pool` says that). Reads the candidates' validation tables, no
    TensorFlow."""
    from hubensemble.ensemble import load_candidates
    from hubensemble.rundir import Run

    run = Run(run_dir)
    cands, _ = load_candidates(run.path)
    if not cands:
        return
    specs = catalogue_entries(run)
    seen = set()
    for c in cands:
        if c.module not in seen:
            seen.add(c.module)
            module_spec(run, c.module, c.trial, modules=specs)
