"""What fit does with a stage's earlier result in its run folder: kept and named again (a
reused export), its files compared with the record (an export changed by hand), lost
(deleted since fit recorded it), kept or dropped when this fit leaves its stage out, and the
seconds a stopped stage spent before (`pipeline._run_stages` reads them all)."""

import logging
import os
from pathlib import Path

from hubensemble.lockwords import command_words
from hubensemble.stagerecords import carried, mark, stage_records, tree_sha256
from hubensemble.text import absolute, escaped

log = logging.getLogger("hubensemble.pipeline")  # said as fit's stages say theirs


def _name_own_export(run) -> None:
    """A reused export (of this ensemble: its digests are unchanged) is named in run.json
    again when another export was recorded since: the fit's summary and report describe the
    export it evaluates. New-user checks ran `ensemble --max-members 1` and `export --out
    elsewhere`, then fit, whose summary and report named that 1-member export as the
    8-member ensemble's; and `export --retrain-full --out elsewhere` (the same members,
    retrained), then fit, whose summary gave that export's retrained test figures while its
    Robustness section measured RUN/export."""
    record = carried(run, "export").get("record")
    if record and run.meta().get("export") != record:
        run.update(export=record)


def _interrupted(run, stage, seconds=None) -> float:
    """Adds `seconds` a stage ran before it stopped unfinished (an interrupt, an error) to
    run.json's count; without, takes the count out: the seconds earlier tries spent. The
    summary's time of a resumed stage was its last part only (a new-user check: tune
    "13.3 s" of its 47 s)."""
    if seconds is None and stage not in (run.meta().get("interrupted_seconds") or {}):
        return 0.0  # the usual case: no locked rewrite of run.json per stage for nothing
    taken = []

    def change(meta):
        counts = dict(meta.get("interrupted_seconds") or {})
        if seconds is None:
            taken.append(counts.pop(stage, 0.0))
        else:
            counts[stage] = round(counts.get(stage, 0.0) + seconds, 2)
        meta["interrupted_seconds"] = counts

    run.modify(change)
    return float(taken[0]) if taken else 0.0


def _export_files(run, export_path) -> str | None:
    """What changed in the export fit wrote (its files' sha256 as recorded), in words, or None.
    Its metadata asset alone was the export's digest: a damaged saved_model.pb was "done
    before, reused", and evaluate then failed (a new-user check)."""
    recorded = carried(run, "export").get("files")
    if recorded is None or not _lost(run, "export", export_path) or not os.path.isdir(
            export_path):
        return None  # an export from before files were recorded, or asked for elsewhere
    now = tree_sha256(export_path)
    changed = [f"{rel} {'is gone' if rel not in now else 'changed'}"
               for rel in recorded if now.get(rel) != recorded[rel]]
    changed += [f"{rel} was added" for rel in now if rel not in recorded]
    if not changed:
        return None
    return (f"{escaped(absolute(os.fspath(export_path)))} is not the export fit wrote: "
            + ", ".join(changed[:3])
            + (f" and {len(changed) - 3} more" if len(changed) > 3 else ""))


def _members_rewritten(recorded, now) -> bool:
    """Whether the members' candidate files (`stagerecords.members_digest`: "members" of the
    export stage's `recorded` digests, of `now`) changed since fit's own export read them.
    Another command's export is then not kept as fit's (`adopt_export`, which compares
    ensemble.json alone): it may have been made from the files before (a hand export, then
    a member's weights replaced, then fit kept that export of the old weights)."""
    return "members" in recorded and recorded["members"] != now.get("members")


def _lost(run, stage, export_path) -> bool:
    """Whether `stage`'s missing result is one fit recorded there (no command deletes it: a
    new-user check deleted ranking.json and fit said nothing); not an export asked for in
    another folder than the last one."""
    meta = run.meta()
    if not (stage_records(meta, run).get(stage) or {}).get("done"):
        return False
    return stage != "export" or (Path(run.exported_to(meta) or "").resolve()
                                 == Path(export_path).resolve())


def _keep_or_drop(run, stage, output, now) -> None:
    """A stage this fit leaves out (evaluate under --no-corruptions or without a test split)
    whose earlier result is there: kept, and marked as an earlier run's, while the results it
    read are unchanged (`now`: stage -> digest); else it describes what is gone (e.g. the
    export before this one), so it is deleted and unrecorded, with a warning: the report and
    the closing table then never show it as this fit's."""
    record = stage_records(run.meta(), run).get(stage)
    if not record or not record.get("done"):  # none, or only the time of a stage run on its
        return  # own (stagerecords.mark_time): no fit's, nothing to keep or drop
    recorded = record.get("digests")
    # A record from before digests were kept is trusted, as _stage_done trusts it.
    fresh = recorded is None or all(recorded.get(s) == d for s, d in now.items())
    if Path(output).exists() and fresh:
        mark(run, stage, record.get("key"), record.get("seconds") or 0.0, reused=True,
             **({} if recorded is None else {"digests": recorded}),
             **({"reads": record["reads"]} if "reads" in record else {}))
        return
    if Path(output).exists():
        Path(output).unlink()
        log.warning("%s: %s described the %s before this fit's; deleted (a fit with "
                    "corruptions, or %s, measures it anew)", stage,
                    Path(output).name, " and ".join(now), command_words("evaluate"))

    def drop(meta):
        meta["stages"] = {k: v for k, v in stage_records(meta, run).items() if k != stage}

    run.modify(drop)
