"""The data spec a run's run.json records, read alone: a leaf that `preflight` and
`rank.merge` both ask (merge imported it from preflight, so preflight could not import
`resume`, which imports rank, without an import cycle)."""

from __future__ import annotations

import os

from hubensemble.errors import RunError


def recorded_spec(run_dir) -> str | None:
    """The data spec run.json of `run_dir` (a folder path, str or os.PathLike; None: none)
    records (data.args.spec, e.g. "folder:/abs/imgs"), None when there is none or run.json
    is missing or damaged (the stage says so). Reads run.json only (`Run.data_section`)."""
    from hubensemble.rundir import Run

    if run_dir is None:
        return None
    try:
        return (Run(os.fspath(run_dir)).data_section("args").get("args") or {}).get("spec")
    except RunError:
        return None
