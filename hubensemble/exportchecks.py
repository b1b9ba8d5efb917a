"""Checks of a SavedModel or export folder from its files alone, without TensorFlow (but
`load_saved_model`): whether TensorFlow can load it, whether an export may replace it, what
hubensemble made. Split from formats.py, which owns the names and the metadata it reads."""

from __future__ import annotations

import os
import pathlib

from hubensemble.errors import HubensembleError, RunError, first_line
from hubensemble.fileio import check_dir_target, read_json, tf_path
from hubensemble.formats import (EXPORT_FORMAT, EXPORT_NAME_MAX, EXPORT_NAME_SUFFIXES, FIT_LOCK,
                                 RANKING_JSON, RUN_FILE, TFLITE_METADATA, TFLITE_MODEL,
                                 WARMUP_FILE, model_way_on, read_export_metadata)
from hubensemble.lockwords import command_words, option_word
from hubensemble.tempnames import NAME_MAX
from hubensemble.text import absolute, counted, escaped, relative_hint, shell


def unloadable_path(path) -> str | None:
    """Why TensorFlow cannot load a SavedModel from folder `path`, known from the path alone,
    or None: it reads the variables through a file pattern, in which "[" starts a character
    class, so "run[1]/export" is looked for as "run1/export" ("Failed to find any matching
    files"); or a name that is not UTF-8, which it can neither write nor read
    (`fileio.tf_path`'s words, naming the folder to rename). Known before the work: `predict`
    and `evaluate` (`check_saved_model_folder`), distill's teacher, a catalogued SavedModel."""
    try:
        tf_path(path)
    except HubensembleError as e:
        return str(e)
    if "[" in absolute(os.fspath(path)):
        return (f"TensorFlow cannot load a SavedModel from {absolute(os.fspath(path))}: "
                "it reads the variables through a file pattern, in which '[' starts a "
                "character class; use a folder whose path has no '['")
    return None


def check_saved_model_folder(model_dir) -> str:
    """`model_dir` (str) when it holds a saved_model.pb; else RunError (a HubensembleError,
    as `predict` and `evaluate_model` document) saying it does not exist, is a file (a
    .tflite one named as such), is a run folder whose RUN/export to pass, a TFLite export
    (its model.tflite), an export without its saved_model.pb (`model_way_on`: the command
    exporting the run its metadata names), or not the folder `hubensemble export` wrote; a
    path TensorFlow cannot load from (`unloadable_path`); files that cannot load
    (`saved_model_problem`: a damaged saved_model.pb, a variables file gone or cut short),
    "MODEL could not be loaded as a SavedModel (…); export it again with …".
    Files only: `predict` and `evaluate` refuse a wrong --model before TensorFlow loads."""
    model_dir = os.fspath(model_dir)
    if not os.path.exists(model_dir):
        raise RunError(f"{model_dir} does not exist{relative_hint(model_dir)}; pass the folder "
                       f"{command_words('export')} wrote (RUN/export by default)")
    if os.path.isfile(model_dir):  # e.g. RUN/export-tflite/model.tflite
        what = " (a TFLite model)" if model_dir.endswith(".tflite") else ""
        raise RunError(f"{model_dir} is a file{what}, not a SavedModel folder; pass the folder "
                       f"{command_words('export')} wrote (RUN/export by default)")
    if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        inside = os.path.join(model_dir, "export")
        hint = (f"; it is a run folder: pass "  # a word to paste: "run a/export" quoted
                f"{option_word(f'--model {shell(inside)}', f'model_dir={absolute(inside)!r}')}" if
                os.path.isfile(os.path.join(inside, "saved_model.pb")) else
                "; it is the TFLite model of `export --format tflite`: pass the SavedModel "
                "that export wrote beside it (RUN/export by default)" if
                os.path.isfile(os.path.join(model_dir, TFLITE_MODEL)) else
                # An export with its saved_model.pb gone: its metadata names the run.
                f"; {model_way_on(model_dir, meta)}" if (
                    meta := read_export_metadata(model_dir, strict=False)) else
                f"; pass the folder {command_words('export')} wrote")
        raise RunError(f"{model_dir} is not a SavedModel folder (no saved_model.pb){hint}")
    if why := unloadable_path(model_dir):
        raise RunError(why)
    check_saved_model_files(model_dir)
    return model_dir


def check_saved_model_files(model_dir) -> None:
    """RunError when the files of the SavedModel folder `model_dir` cannot load
    (`saved_model_problem`), in `load_saved_model`'s words: "MODEL could not be loaded as a
    SavedModel (WHAT); WAY ON" (`model_way_on`: the command that writes the export again).
    Nothing for a folder without a readable saved_model.pb (`check_saved_model_folder` says
    that). Files only, no TensorFlow."""
    if problem := saved_model_problem(model_dir):
        way = model_way_on(model_dir, read_export_metadata(model_dir, strict=False))
        raise RunError(f"{model_dir} could not be loaded as a SavedModel ({problem}); {way}")


#: The way on `savedmodel_calls.saved_model_pb_problem` ends with, for a module's folder: an
#: export's is the command that writes it again (`model_way_on`).
_MODULE_WAY = "; copy or download the module whole again"


def saved_model_problem(model_dir) -> str | None:
    """What is wrong with the files of the SavedModel folder `model_dir` (a str or path, its
    saved_model.pb there), or None: a saved_model.pb that does not parse as a SavedModel
    ("MODEL/saved_model.pb holds nothing (0 bytes)", "… holds text …", "… does not parse as
    a SavedModel (N bytes: cut short, or damaged)", "… holds no meta graph":
    `savedmodel_calls.saved_model_pb_problem`, without its way on for a module), then a
    variables file missing or cut short (`modulefiles.saved_model_files_missing`). Files
    only, no TensorFlow: `check_saved_model_folder` says it with the command that writes
    the export again, before TensorFlow loads. A damaged saved_model.pb was said only by
    TensorFlow's load ("Wire format was corrupt"), after evaluate had asked for --data, and
    a variables file gone only after predict had imported TensorFlow (a new user's check)."""
    from hubensemble.modulefiles import saved_model_files_missing
    from hubensemble.savedmodel_calls import saved_model_pb_problem

    if problem := saved_model_pb_problem(model_dir):
        return problem.partition(_MODULE_WAY)[0]
    return saved_model_files_missing(model_dir)


def is_export(model_dir) -> bool:
    """Whether MODEL_DIR carries the metadata asset of a hubensemble export (so replacing
    it loses nothing the user made by other means)."""
    return read_export_metadata(model_dir, strict=False).get("format") == EXPORT_FORMAT


def made_by_hubensemble(folder) -> str | None:
    """What `folder` is when hubensemble made it, as words ("a hubensemble run folder", "a
    hubensemble export", "a hubensemble TFLite export"), else None: a run's run.json,
    ranking.json or fit lock (RUN_FILE, RANKING_JSON, FIT_LOCK: a refused fit left just log.txt
    and the lock), or an export's metadata asset. The folder loader ignores such a folder
    inside the data: it is never a class of images (data.folder)."""
    folder = os.fspath(folder)
    if any(os.path.isfile(os.path.join(folder, n)) for n in (RUN_FILE, RANKING_JSON, FIT_LOCK)):
        return "a hubensemble run folder"
    if is_export(folder):
        return "a hubensemble export"
    return "a hubensemble TFLite export" if is_tflite_export(folder) else None


def is_tflite_export(folder) -> bool:
    """Whether `folder` holds what `export --format tflite` writes (model.tflite and its
    hubensemble.json of format "hubensemble-export-tflite"), so replacing or removing it
    loses nothing the user made by other means."""
    try:
        meta = read_json(os.path.join(os.fspath(folder), TFLITE_METADATA))
    except (OSError, ValueError):
        return False
    return (isinstance(meta, dict) and meta.get("format") == EXPORT_FORMAT + "-tflite"
            and os.path.isfile(os.path.join(os.fspath(folder), TFLITE_MODEL)))


def check_export_target(out_dir, flag: str = "--out", run_dir=None, *,
                        tflite: bool = False) -> None:
    """Raises HubensembleError (RunError) unless folder `out_dir` is absent, empty, or an
    earlier hubensemble export, with no file standing where it or a parent would go, and,
    given the exporting run's `run_dir`, not inside another run's folder (its export); the
    message tells the user to choose another `flag` folder. With `tflite` (export --format
    tflite) the same holds for OUT-tflite/ beside it, which may only be absent, empty or an
    earlier TFLite export (`is_tflite_export`): an unrelated folder of that name was replaced
    and a file of that name hidden as a temp entry (a new-user check). A name that is not
    UTF-8 (`fileio.tf_path`: TensorFlow can neither write nor read it; in a run folder
    'caf\\xe9', RUN/export too) is refused naming the folder to rename, and so is a name past
    EXPORT_NAME_MAX bytes (248: its OUT-tflite/, written by a TFLite export now or into the
    same folder later, would not fit 255 bytes, an OSError ENAMETOOLONG after the work; not
    cut as its lock's and kept folder's names are, since export, adopt and a run's record
    read OUT-tflite by that name). Called before the
    work that ends by writing there (export and its command line's check, fit before its
    rank). Files only: no TensorFlow."""
    out_dir = os.fspath(out_dir)
    try:  # TensorFlow writes and reloads it: a name it cannot reach, refused after the work
        tf_path(out_dir)
    except HubensembleError as e:
        raise RunError(f"{e}, or choose another {flag} folder") from None
    if why := unloadable_path(out_dir):  # the export's reload check would fail after the work
        raise RunError(f"{why} (choose another {flag} folder)")
    name = os.path.basename(out_dir.rstrip(os.sep))
    if len(os.fsencode(name)) > EXPORT_NAME_MAX:  # its NAME-tflite: ENAMETOOLONG after the work
        raise RunError(f"{out_dir}: the folder's name is {len(os.fsencode(name))} bytes; an "
                       f"export's name may have at most {EXPORT_NAME_MAX} (the longest file "
                       f"name, {NAME_MAX} bytes, less {NAME_MAX - EXPORT_NAME_MAX} for the "
                       f"{EXPORT_NAME_SUFFIXES[0]} folder of its TFLite model beside it): choose "
                       f"another {flag} folder with a shorter name")
    if run_dir is not None:  # fit's --out a file: named as itself, not "(in OUT/export)"
        check_dir_target(run_dir, f"choose another {option_word('--out', 'out')} folder")
    check_dir_target(out_dir, f"choose another {flag} folder")
    if run_dir is not None:
        # fit --export RUN1/export from another run replaced RUN1's export without a word:
        # both runs' summaries then named one folder (a new-user check).
        mine = os.path.realpath(run_dir)
        for parent in list(pathlib.Path(os.path.realpath(out_dir)).parents)[:-1]:
            if (parent / RUN_FILE).is_file() and str(parent) != mine:
                # The run folder itself inside it (fit --out 'run a/export', whose export is
                # OUT/export): named, and its flag, where "run a/export/export" was.
                inside, word = ((run_dir, option_word("--out", "out")) if parent in
                                pathlib.Path(mine).parents else (out_dir, flag))
                raise RunError(f"{escaped(absolute(inside))} is inside the run folder "
                               f"{escaped(str(parent))} of another run (its export, or files "
                               f"its commands own): choose another {word} folder outside it")
    if tflite:
        beside = f"{out_dir.rstrip(os.sep)}-tflite"
        if os.path.lexists(beside) and not os.path.isdir(beside):
            raise RunError(f"{beside} is not a folder (a file or a broken link), where the "
                           f"TFLite model's folder goes: choose another {flag} folder, or move "
                           "it")
        if os.path.isdir(beside) and os.listdir(beside) and not is_tflite_export(beside):
            raise RunError(f"{beside} exists and is not a TFLite export made by hubensemble "
                           f"(export --format tflite writes OUT-tflite/ beside the SavedModel); "
                           f"refusing to replace it: choose another {flag} folder, or delete "
                           "it first")
        _refuse_foreign(beside, flag, tflite=True)
    if not replaceable_export(out_dir) and not _refuse_foreign(out_dir, flag):
        raise RunError(f"{out_dir} exists and is not an export made by hubensemble; refusing "
                       f"to replace it: choose another {flag} folder, or delete it first")


def _refuse_foreign(folder, flag: str, *, tflite: bool = False) -> bool:
    """Raises RunError naming them when `folder` holds an earlier export and entries it did
    not write (`foreign_entries`): they would be deleted with it. False otherwise."""
    if not (is_tflite_export(folder) if tflite else is_export(folder)):
        return False
    if foreign := foreign_entries(folder, tflite=tflite):
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise RunError(f"{folder} holds an earlier {'TFLite ' if tflite else ''}export and "
                       f"{counted(len(foreign), 'entry', 'entries')} it did not write "
                       f"({shown}), which replacing it would delete: move them out, choose "
                       f"another {flag} folder, or delete it first")
    return False


#: What an export writes at the top of its folder (a SavedModel's own entries: its assets/
#: hold what the model and hubensemble.json put there) and in variables/, assets.extra/.
SAVEDMODEL_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets",
                                "assets.extra"})


def foreign_entries(folder, *, tflite: bool = False) -> list[str]:
    """The entries of export folder `folder` (paths relative to it, sorted) that the export
    does not write: at its top anything but SAVEDMODEL_ENTRIES (a TFLite export's:
    TFLITE_MODEL, TFLITE_METADATA), in variables/ anything but variables.*, in assets.extra/
    anything but the warmup file. A user's notes put there were deleted with the folder
    when the export was written again (a new-user check)."""
    folder = os.fspath(folder)
    top = {TFLITE_MODEL, TFLITE_METADATA} if tflite else SAVEDMODEL_ENTRIES
    found = [n for n in os.listdir(folder) if n not in top]
    if not tflite:
        for sub, keep in (("variables", lambda n: n.startswith("variables.")),
                          ("assets.extra", lambda n: n == os.path.basename(WARMUP_FILE))):
            path = os.path.join(folder, sub)
            if os.path.isdir(path):
                found += [f"{sub}/{n}" for n in os.listdir(path) if not keep(n)]
    return sorted(found)


def replaceable_export(folder, *, tflite: bool = False) -> bool:
    """Whether an export may replace `folder`: absent, empty, or an earlier hubensemble export
    (`is_export`; with `tflite`, an earlier TFLite export, `is_tflite_export`) that holds
    nothing it did not write (`foreign_entries`), so that nothing the user made by other
    means is lost. `check_export_target`'s rule before the work, and `fileio.replace_dir`'s
    once more at the swap (files can come meanwhile)."""
    if not os.path.isdir(folder) or not os.listdir(folder):
        return True
    if not (is_tflite_export(folder) if tflite else is_export(folder)):
        return False
    return not foreign_entries(folder, tflite=tflite)


def load_saved_model(model_dir):
    """`tf.saved_model.load` of MODEL_DIR (`check_saved_model_folder` first), for `evaluate`
    and `predict`: a folder that does not load (no variables/, a damaged file) is a RunError
    in one line naming it, TensorFlow's first line and the way on (`model_way_on`: the
    command exporting the run its metadata names), not TensorFlow's traceback; it said
    "export it again", naming no command."""
    from hubensemble._tf import tensorflow as tf

    path = tf_path(check_saved_model_folder(model_dir))  # (its refusal is its own)
    try:
        return tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        way = model_way_on(model_dir, read_export_metadata(model_dir, strict=False))
        raise RunError(f"{path} could not be loaded as a SavedModel ({type(e).__name__}: "
                       f"{first_line(e)}); {way}") from None
