"""The run an export folder was made from, for a stage given the export where it takes a run
(`rundir.Run.require_started`): `ensemble --run RUN/export` said the folder "is not a
hubensemble run" and named fit and rank as what makes one, where the run was next to it.
No TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

from hubensemble import formats


def _is_run(folder) -> bool:
    return any(os.path.isfile(os.path.join(folder, name))
               for name in (formats.RUN_FILE, formats.RANKING_JSON))


def export_not_run(folder) -> str | None:
    """The words of a stage refusing `folder` (str or os.PathLike) as its run when the folder
    is a hubensemble export (`formats.is_export`), else None: "FOLDER is a hubensemble
    export, not a run; pass --run /abs/RUN, the run it was exported from" (from Python
    "run_dir='/abs/RUN'", `lockwords.option_word`). The run is the folder holding it when it
    is a run's own export folder (RUN/export: a copied run's is its own, where its metadata
    records the original), else the one its metadata's "run" records
    (`exportfolder.run_record`), else the folder holding it, whichever holds a run.json or
    ranking.json; when none does, the recorded path is named as moved or deleted."""
    from hubensemble.lockwords import option_word
    from hubensemble.text import absolute, escaped, shell

    if not formats.is_export(folder):
        return None
    meta = formats.read_export_metadata(folder, strict=False)
    recorded = formats.exported_run(meta, folder)
    here = Path(absolute(folder))
    own = here.name == formats.EXPORT_DIR  # RUN/export: its run, though copied elsewhere
    order = (here.parent, recorded) if own else (recorded, here.parent)
    found = next((p for p in order if p and _is_run(p)), None)
    what = f"{escaped(here)} is a hubensemble export, not a run"
    if found is not None:
        found = absolute(found)
        return (f"{what}; pass {option_word(f'--run {shell(found)}', f'run_dir={found!r}')}, "
                "the run it was exported from")
    if recorded:
        return (f"{what}; the run it was exported from, {escaped(recorded)} (its metadata's "
                "record), holds no run now (moved or deleted): pass that run's folder")
    return f"{what}; pass the folder of the run it was exported from"


def export_not_out(path, flag: str) -> str:
    """The words of a run folder (`flag`, rank's, fit's or merge's --out) `path` that is a
    hubensemble export: a new run goes to a new or empty folder, and when the export is a
    run's own (RUN/export) that run is named, pasteable (`text.shell`), as the one it meant:
    "pass a new or empty --out folder" alone said nothing of the export."""
    from hubensemble.text import absolute, escaped, shell

    parent = Path(absolute(path)).parent
    again = ""
    if _is_run(parent):
        word = (f"{flag} {shell(parent)}" if flag.startswith("--")
                else f"{flag}={str(parent)!r}")
        again = f", or {word}, the run it was exported from"
    return (f"{escaped(path)} is a hubensemble export, not a run folder: the run's files would "
            f"mix with the export's; pass a new or empty {flag} folder{again}")
