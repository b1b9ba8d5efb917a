"""The record of an ensemble refused for its inference budget (run.json "stages" ->
"ensemble" -> "refused"), and which of run.json's records of the ensemble's options is the
newer (`newer_first`).

A refused ensemble writes no ensemble.json: the one a run had before stays, and the report
showed it as the run's without a word of the newer options it refused (a fit with a new
--max-latency-ms no candidate meets). The record says which limits, when, by which command
and why; the report reads it (`report.budget`). It lives in the stage's record, so a later
ensemble that selects drops it with the rest of that record (`stagerecords.mark`, fit's;
`stagerecords.mark_time`, one run on its own)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

#: The field of run.json's "stages" -> "ensemble" that holds the refusal.
REFUSED = "refused"


def record_refusal(run_dir, limits, why: str, *, stage: str = "ensemble") -> None:
    """Records in run `run_dir`'s run.json (`Run.modify`: under its lock, atomically) that an
    ensemble was refused because no candidate fits `limits` (a `cost.Limits`), or with
    `stage` "tune" that fit was refused before its sweep because no module fits them
    (`cost.budget.no_module_fits`: it wrote no record, and the report did not say why the run
    stopped): "stages" -> `stage` -> "refused" = {"limits": `Limits.to_json()` (GFLOPs per
    image, ms at batch 1, members; None unlimited), "why": `why` (`cost.budget.cheapest`'s
    words), "time": `text.time_stamp()`, "command": "fit" or "ensemble", the command holding the
    run's lock (`Run.lock`; None from Python's `select_ensemble` outside one)}. The stage's
    other fields (fit's key, digests, time) stay: they are of the ensemble the run still holds.
    Nothing is recorded without run.json; a run.json that cannot be written leaves a warning
    (the refusal itself is raised by the caller either way)."""
    from hubensemble import formats
    from hubensemble.errors import HubensembleError
    from hubensemble.fileio import owned_here
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import stage_records
    from hubensemble.text import time_stamp

    run = Run(run_dir)
    if not run.meta_path.is_file():
        return
    held = owned_here(run.path / formats.FIT_LOCK) or {}
    record = {"limits": limits.to_json(), "why": str(why), "time": time_stamp(),
              "command": held.get("command")}

    def change(meta):
        stages = dict(stage_records(meta, run))
        stages[stage] = {**(stages.get(stage) or {}), REFUSED: record}
        meta["stages"] = stages

    try:
        run.modify(change)
    except (HubensembleError, OSError) as e:
        log.warning("the refusal was not recorded in %s (%s): the report does not say it",
                    run.meta_path, e)


def refusal(meta, *, stage: str = "ensemble") -> dict | None:
    """run.json's (`meta`) record of the last ensemble refused for its budget since one
    selected (`record_refusal`; `stage` "tune": of the last fit refused before its sweep,
    since a sweep ran), or None (none, or edited into no JSON object)."""
    from hubensemble.fileio import json_object

    found = json_object(json_object(json_object(meta).get("stages")).get(stage)).get(REFUSED)
    return found if isinstance(found, dict) and isinstance(found.get("limits"), dict) else None


def refused_since(run, stage: str, start: float) -> bool:
    """Whether `stage` of run `run` (a Run) recorded a refusal for its budget (`refusal`) at
    or after `start` (seconds since the epoch; the record's time is to the second): the
    stage that stopped was refused, not a run stopped in it, whose seconds fit counts as
    "earlier runs that stopped in it" (`report.runsections.stage_time_note`)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.text import stamp_time

    try:
        found = refusal(run.meta(), stage=stage)
        return found is not None and stamp_time(found.get("time")).timestamp() >= int(start)
    except (HubensembleError, OSError, TypeError, ValueError):
        return False


def newer_first(meta: dict) -> tuple[str, str]:
    """run.json's (`meta`) records of the ensemble's options, the newer first: ("fit",
    "ensemble") when the last fit's options never ran its ensemble stage, else ("ensemble",
    "fit"). Neither record holds a time; the stage record says it: fit writes "fit" ->
    "keys" (a key per stage of its options) before its stages, and "ensemble" -> "options"
    is written by an ensemble that selected (fit's, which records its key in "stages" ->
    "ensemble", or one on its own, which keeps that key and adds its "command" and the last
    fit's key then, "fit_key": `stagerecords.mark_time`). A refusal recorded by the fit
    (`refusal`) makes its options the newer. Else a stage key other than the last fit's is
    an ensemble of an earlier fit's options, unless an ensemble ran on its own since that fit
    ("fit_key" is its key): the last fit stopped before its ensemble selected (a
    --max-gflops no module meets, refused before tune; an interruption). An `ensemble` on
    its own after a fit refused for its budget kept the earlier key and read as older, so
    the fit's refused options were read first and the report said no candidate fits them."""
    from hubensemble.fileio import json_object

    fit = json_object(json_object(meta.get("fit")).get("keys")).get("ensemble")
    stage = json_object(json_object(meta.get("stages")).get("ensemble"))
    refused = refusal(meta)
    if refused is not None:
        return ("fit", "ensemble") if refused.get("command") == "fit" else ("ensemble", "fit")
    if fit is not None and stage.get("key") is not None and stage.get("key") != fit \
            and stage.get("fit_key") != fit:
        return ("fit", "ensemble")
    return ("ensemble", "fit")
