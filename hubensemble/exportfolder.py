"""An export folder: what becomes of an export another command wrote where `fit` writes its
own (`keep_replaced_export`: moved aside and kept, `kept_export_folder`)."""

from __future__ import annotations

import os
import time

from hubensemble import fileio
from hubensemble.formats import TFLITE_METADATA, is_tflite_export, read_export_metadata
from hubensemble.text import shell


def keep_replaced_export(run, out_dir) -> str:
    """Moves the export in folder `out_dir` (a hubensemble export that is not the one `fit`
    recorded there: another command wrote it since, e.g. `export --retrain-full` by hand) to
    a sibling folder fit never writes (`kept_export_folder`), with its TFLite model when it
    has one (OUT-tflite/ of the same export, to KEPT-tflite/), so fit's export stage that
    follows loses nothing; a run.json record naming `out_dir` then names the kept folder
    (fit's export replaces it when it succeeds). Returns what fit says, as a warning: the
    folder, what it held (members, retrained or not, when written, from its metadata), where
    it went and the commands that evaluate and serve it. `run`: the Run. fit only warned
    before, then replaced it (a new-user check lost a --retrain-full export of minutes that
    way); the warning came too late to keep it. Raises OSError when the folder cannot be
    moved (nothing is replaced then)."""
    from hubensemble.datachange import evaluate_data_flags

    out_dir = os.path.abspath(os.fspath(out_dir))
    meta = read_export_metadata(out_dir, strict=False) or {}
    members, full = meta.get("members"), bool(meta.get("retrain_full"))
    held = ", ".join(part for part in (
        f"{len(members)} member(s)" if isinstance(members, list) else None,
        "retrained on train + val (--retrain-full)" if full else None,
        f"written {meta['created']}" if meta.get("created") else None) if part)
    kept = kept_export_folder(out_dir, meta)
    tflite = f"{out_dir}-tflite"
    # Its TFLite model is the one written with it (the same "created"); an older one is of
    # no export now, and the export stage removes it as before (`_remove_stale_tflite`).
    with_tflite = is_tflite_export(tflite) and meta.get("created") and (
        (fileio.read_json(os.path.join(tflite, TFLITE_METADATA)) or {}).get("created")
        == meta["created"])
    os.rename(out_dir, kept)
    if with_tflite:
        os.rename(tflite, f"{kept}-tflite")
    recorded = run.exported_to()
    if recorded and os.path.abspath(recorded) == out_dir:  # where it is now, until fit's own
        run.modify(lambda m: m["export"].update(run.export_record(kept)))
    in_run = os.path.dirname(kept) == os.path.abspath(run.path)
    data = evaluate_data_flags(((run.meta().get("data") or {}).get("args")) or {},
                               in_run=in_run)
    return (f"{out_dir} held an export that is not the one this fit recorded there "
            f"({held or 'its metadata is unreadable'}): another command wrote it since. "
            f"Moved it to {kept}" + (f" (its TFLite model to {kept}-tflite)" if with_tflite
                                     else "")
            + ", which fit leaves alone; this fit writes its own export of the ensemble to "
            f"{out_dir}. Evaluate the kept export with `hubensemble evaluate --model "
            f"{shell(kept)}{data}`, serve it as any export (`hubensemble predict --model "
            f"{shell(kept)} IMAGE`, or TF Serving), and delete the folder when you no longer "
            "need it. To keep an export of your own out of fit's way, write it to another "
            f"folder: `hubensemble export --run {shell(run.path)} --out DIR"
            # DIR is the user's to choose: a placeholder, not a path (shell made it absolute)
            + (" --retrain-full" if full else "") + "`")


#: The name of a kept export: KEPT_EXPORT.format(folder=<the export folder's name>, stamp=...).
KEPT_EXPORT = "{folder}-replaced-{stamp}"


def kept_export_folder(out_dir, meta: dict) -> str:
    """Where `keep_replaced_export` moves the export in `out_dir` (absolute path str): beside
    it, named KEPT_EXPORT with the export's "created" time of its metadata `meta` (else its
    folder's modification time) as YYYYMMDDTHHMMSS (RUN/export-replaced-20261204T154001),
    so the name says what it is and when it was written; "-2", "-3", … when taken, so an
    earlier kept export is never replaced."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    try:
        when = time.strptime(str(meta.get("created")), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        when = time.localtime(os.path.getmtime(out_dir))
    base = os.path.join(os.path.dirname(out_dir), KEPT_EXPORT.format(
        folder=os.path.basename(out_dir), stamp=time.strftime("%Y%m%dT%H%M%S", when)))
    path, n = base, 1
    while os.path.lexists(path) or os.path.lexists(f"{path}-tflite"):
        n += 1
        path = f"{base}-{n}"
    return path
