"""File names, format versions and readers of hubensemble's JSON metadata, without TensorFlow.

Every name a stage writes into a run directory or an export lives here, once; the modules
that write them and the commands that only read them (``predict``, ``evaluate``, ``report``,
``catalogue validate``) import this module, which imports neither TensorFlow nor Keras.
The checks of an export's folder (exportchecks.py) and the evaluation file
(evaluationfile.py) live beside it and are still named here (`_MOVED`).
"""

from __future__ import annotations

import os
import platform

from hubensemble.errors import HubensembleError, RunError, checks_keywords
from hubensemble.fileio import file_sha256, read_json, tf_path
from hubensemble.lockwords import command_words
from hubensemble.sweeps import UNTUNED_BY_KERAS_TUNER, sweep_parts
from hubensemble.tempnames import NAME_MAX
from hubensemble.text import absolute, escaped, shell, shell_word, shown_time

# --- the run directory (hubensemble.rundir.Run spells the paths) -----------------------------
RUN_FILE = "run.json"
RANKING_JSON = "ranking.json"
RANKING_CSV = "ranking.csv"
CANDIDATES_DIR = "candidates"
TUNER_DIR = "tuner"
LABELS_DIR = "labels"
#: A task's splits, in the order every stage and file lists them (RUN/labels/<split>.npy).
SPLITS = ("train", "val", "test")
#: RUN/labels/<this>: the pixel keys of the train and val images (pixelkeys.read_pixel_keys).
PIXEL_KEYS_FILE = "pixel_keys.npz"
#: RUN/labels/<this>: the training images' files, a JSON list of str (index i: train[i]), for
#: data read from files (folder:); the report's "Labels to check" names images by it.
TRAIN_PATHS_FILE = "train_paths.json"
#: RUN/labels/<this>: the validation images' files, as TRAIN_PATHS_FILE (index i: val[i]).
VAL_PATHS_FILE = "val_paths.json"
#: RUN/labels/<this>: every training and validation image whose label to check, worst first,
#: a CSV table (`labelcheck.write_labels_to_check`, which the report's "Labels to check"
#: calls).
LABELS_TO_CHECK_CSV = "to_check.csv"
ENSEMBLE_FILE = "ensemble.json"
ROBUSTNESS_FILE = "robustness.json"
#: Inference cost of every candidate (`hubensemble cost`; hubensemble.cost.records).
COST_FILE = "cost.json"
#: The distilled student: its candidate folder(s) and the comparison (`hubensemble distill`).
DISTILL_DIR = "distill"
DISTILL_FILE = "distill.json"
LOG_FILE = "log.txt"
#: The run folder's lock, held by the command writing into it (fit first took it, hence the
#: name): a second one on the same folder is refused at once (rundir.Run.lock).
FIT_LOCK = ".fit.lock"
#: Who holds FIT_LOCK ({"command", "host", "pid", "since"}), while it is held
#: (fileio.owned_lock).
FIT_LOCK_OWNER = FIT_LOCK + ".holder"
#: The lock each process of a chief/worker sweep holds on the run folder, by its tuner id
#: (chief, tuner0, …): commands holding FIT_LOCK and sweep processes refuse each other
#: (sweeplock).
SWEEP_LOCK = ".sweep-{}.lock"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
#: The report's figures (RUN/report_files/<name>.png).
REPORT_FIGURES_DIR = "report_files"
#: rank's leave-one-out kNN predictions (RUN/knn.npz).
KNN_FILE = "knn.npz"
#: RUN/knn/<module>.npy: the kNN predictions of rankings written before KNN_FILE (5b1259d,
#: 2026-11-30), still read (rank.load_knn_predictions) and a run's entry (RUN_ENTRIES).
LEGACY_KNN_DIR = "knn"
#: The default export folder, RUN/export.
EXPORT_DIR = "export"
#: run.json's "stages", in the order `fit` runs them (cost: keyed by tune's key).
FIT_STAGES = ("rank", "tune", "cost", "ensemble", "export", "evaluate", "report")

# --- an export (a SavedModel folder) ---------------------------------------------------------
EXPORT_FORMAT = "hubensemble-export"
#: What an export adds to its own folder's name, read by that name as it is (export/stage.py,
#: export/adopt.py, runexports.py, exportfolder.py): its TFLite folder OUT-tflite/. Its other
#: names are cut to fit NAME_MAX (`fileio.fitted_name`): a kept export's NAME-replaced-STAMP
#: (with room for its -tflite), the lock .NAME.lock and its .holder, the temp folder
#: .tmp-NAME.TAG.
EXPORT_NAME_SUFFIXES = ("-tflite",)
#: The longest name an export folder may have, in bytes (os.fsencode), so that NAME plus the
#: longest of EXPORT_NAME_SUFFIXES fits NAME_MAX (255): 248 (`check_export_target`).
EXPORT_NAME_MAX = NAME_MAX - max(len(s) for s in EXPORT_NAME_SUFFIXES)
EXPORT_FORMAT_VERSION = 1
#: assets/<this>: class names, members, metrics and versions, readable without hubensemble.
METADATA_ASSET = "hubensemble.json"
SERVING_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serve_bytes"
MEMBERS_SIGNATURE = "serve_members"
#: The export's TF Serving warmup file, relative to the SavedModel folder (export.warmup: a
#: TFRecord of PredictionLog protos, which TF Serving runs when it loads the model).
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
#: `export --format tflite`: the folder EXPORT-tflite/ (RUN/export-tflite/ by default) beside
#: the SavedModel holds the model and its metadata (hubensemble.json).
TFLITE_DIR = "export-tflite"
TFLITE_MODEL = "model.tflite"
TFLITE_METADATA = "hubensemble.json"

#: `export --student`'s default folder, RUN/export-student (and its TFLite folder beside it).
STUDENT_EXPORT_DIR = "export-student"

#: Every top-level entry a stage may write in a run folder (besides temp entries of atomic
#: writes, fileio.is_temp). `fit --restart` removes these and nothing else, and a folder that
#: holds anything else but no run is refused as --out (rundir.Run.check_folder_is_ours).
#: A stage that adds an entry adds it here (test_fit checks a whole run against it), and
#: one that stops writing an entry keeps it here: an older version's run holds it
#: (LEGACY_KNN_DIR, which `fit --restart` had kept as "an entry that no stage writes").
RUN_ENTRIES = frozenset({
    RUN_FILE, RUN_FILE + ".lock", RANKING_JSON, RANKING_CSV, KNN_FILE, LEGACY_KNN_DIR,
    LABELS_DIR,
    CANDIDATES_DIR, TUNER_DIR, COST_FILE, ENSEMBLE_FILE, EXPORT_DIR, TFLITE_DIR,
    ROBUSTNESS_FILE, DISTILL_DIR, DISTILL_FILE, REPORT_MD, REPORT_HTML, REPORT_FIGURES_DIR,
    LOG_FILE, FIT_LOCK, FIT_LOCK_OWNER, STUDENT_EXPORT_DIR, STUDENT_EXPORT_DIR + "-tflite"})

#: The distributions whose versions every record names (run.json, exports, the zoo).
VERSIONED = ("tensorflow", "keras", "keras-tuner", "tensorflow-hub", "numpy")


def _export_again(model_dir) -> str:
    """The export command that writes export `model_dir` again when its metadata, which names
    its run, cannot be read: RUN a placeholder, --out the folder; in the caller's words
    (`lockwords`)."""
    return export_command({}, model_dir)


def exported_run(meta, model_dir=None) -> str | None:
    """The run folder (str, as recorded) that export metadata `meta` (a dict; anything else
    is none) names ("run": {"path"}), or None: the one reader of it (export/tflite.py read it
    by hand, taking a path edited into no string). With `model_dir`, the export's folder:
    the run whose own folder it is (RUN/export, RUN/export-student of a student export,
    beside RUN/run.json; absolute) first: a copied run's export is its own, where its
    metadata names the run it was copied from; then the recorded path when it holds a
    run.json, else the run at the recorded path relative to the export (`_moved_run`: an
    export moved together with its run; `moved_run_words` says so), else the recorded path.
    Without `model_dir` the recorded path alone."""
    run = meta.get("run") if isinstance(meta, dict) else None
    run = run.get("path") if isinstance(run, dict) else None
    student = meta.get("student") if isinstance(meta, dict) else None
    student = student.get("module") if isinstance(student, dict) else None
    own = STUDENT_EXPORT_DIR if isinstance(student, str) and student else EXPORT_DIR
    home = model_dir is not None and os.path.split(absolute(model_dir))
    if home and home[1] == own and os.path.isfile(os.path.join(home[0], RUN_FILE)):
        return home[0]
    run = run if isinstance(run, str) and run else None
    if model_dir is not None and not (run and os.path.isfile(os.path.join(run, RUN_FILE))):
        return _moved_run(meta, model_dir) or run
    return run


def _moved_run(meta: dict, model_dir) -> str | None:
    """The run (absolute path str) at export metadata `meta`'s "run" "relative" path from
    the export's folder `model_dir` (`exportfolder.run_record`), when it holds a run.json
    of the recorded "created" (either unknown: any run.json), else None: the run moved
    together with the export (`mv R served elsewhere/`)."""
    from hubensemble.fileio import read_json

    record = meta.get("run") if isinstance(meta, dict) else None
    relative = record.get("relative") if isinstance(record, dict) else None
    if not isinstance(relative, str) or not relative:
        return None  # an export written before records none
    found = os.path.normpath(os.path.join(absolute(model_dir), relative))
    try:
        now = read_json(os.path.join(found, RUN_FILE))
    except (OSError, ValueError):
        return None
    created = record.get("created")
    if created and isinstance(now, dict) and now.get("created") not in (None, created):
        return None  # another run lies there now
    return found


def moved_run_words(meta, model_dir) -> str:
    """" (its metadata names /old/R, which holds no run now: the run moved with the export,
    found at ../R from it)" when `exported_run(meta, model_dir)` is the run found by the
    export's relative record (`_moved_run`), not the absolute path recorded; "" otherwise.
    The caller names the run it uses; this says why it is not the recorded one."""
    if model_dir is None:
        return ""
    record = meta.get("run") if isinstance(meta, dict) else None
    recorded = record.get("path") if isinstance(record, dict) else None
    used = exported_run(meta, model_dir)
    if not used or used != _moved_run(meta, model_dir) or used == recorded:
        return ""
    if isinstance(recorded, str) and recorded:
        return (f" (its metadata names {escaped(recorded)}, which holds no run now: the run "
                f"moved with the export, found at {record['relative']} from it)")
    return f" (the run found at {record['relative']} from the export, as its metadata says)"


def export_command(meta, model_dir=None, *, flags: str = "", keywords: str = "") -> str:
    """The command that writes export `model_dir` again (None: the run's default folder),
    whose metadata is `meta` (a dict; anything else is none), in the caller's words
    (`lockwords.command_words`), then `flags` / `keywords` (e.g. "--format tflite"): its run
    (`exported_run`; a RUN placeholder when it names none), its student's module
    (--student MODULE, "student" of a student export) and --out the folder unless it is the
    run's own (RUN/export, RUN/export-student). Refusals said "export it again" naming no
    run, `hubensemble export --run RUN` though the metadata named it, or for an export
    written with --out DIR `hubensemble export --run R`, which writes R/export and leaves
    DIR as it was. An export in a run's own folder (RUN/export, RUN/export-student beside
    RUN's run.json) is that run's: a copied run's export named the run it was copied from
    (its metadata's record), whose export it would write, not this one."""
    run = exported_run(meta, model_dir)
    student = meta.get("student") if isinstance(meta, dict) else None
    student = student.get("module") if isinstance(student, dict) else None
    student = student if isinstance(student, str) and student else None
    own = run and os.path.join(run, STUDENT_EXPORT_DIR if student else EXPORT_DIR)
    out = model_dir is not None and (not own or absolute(model_dir) != absolute(own))
    return command_words("export", run, flags=" ".join(filter(None, (
        "" if run else "--run RUN", f"--student {shell_word(student)}" if student else "",
        f"--out {shell(model_dir)}" if out else "", flags))), keywords=", ".join(filter(None, (
            "" if run else "run_dir=RUN", f"student={student!r}" if student else "",
            f"out_dir={absolute(model_dir)!r}" if out else "", keywords))))


#: What `evaluate` takes as its model (docs/export.md, "What evaluate takes"): a
#: hubensemble export, or any SavedModel with the same serving_default.
EVALUATE_TAKES = ("a SavedModel whose serving_default takes one image input (float32 "
                  "[N, H, W, 3] in [0, 1]) and returns 'probabilities' (float32 [N, C])")


def model_way_on(model_dir, meta: dict) -> str:
    """The way on for a `--model` folder `model_dir` (export metadata `meta`, {} for none)
    that `evaluate` or `predict` cannot use, in the caller's words: a hubensemble export is
    exported again (its run, when its metadata names it); a SavedModel of another maker
    (tf.saved_model.save, Keras' model.export, whose serving_default returns 'output_0') is
    not one: pass the folder `hubensemble export` writes, or for evaluate save the model
    with serving_default as EVALUATE_TAKES says. evaluate said only "the signature returns
    ['output_0'], not 'probabilities'", naming no folder and no way on (a new-user check)."""
    if meta:
        return (f"export it again with {export_command(meta, model_dir)}"
                f"{moved_run_words(meta, model_dir)}")
    export = command_words("export", flags="--run RUN", keywords="run_dir=RUN")
    return (f"{model_dir} is not an export of hubensemble (no assets/hubensemble.json): pass "
            f"the folder {export} writes (RUN/export by default); evaluate takes another "
            f"model only as {EVALUATE_TAKES}: save yours with such a signature (docs/export.md,"
            f" \"What evaluate takes\")")


def versions() -> dict[str, str]:
    """{"hubensemble", "python", and per module of VERSIONED ("keras_tuner" for
    keras-tuner): the release imported here (`installed.imported_release`: the module's
    own ``__version__`` when it is imported and differs from its distribution's, else the
    distribution's version; "not installed" when Python finds no such module, "unknown"
    when neither says), and "<module>_distribution" when the files are another
    distribution's than the one VERSIONED names ("tensorflow-cpu", "tf-nightly",
    "keras-nightly"), or "none" when no installed distribution lists them}. Before
    2026-12-05 the version was the named distribution's alone: "not installed" for tensorflow from
    tensorflow-cpu, keras' release when keras-nightly's files were imported. Readers
    (report's Versions table, resume's "written by") take any keys. Asking imports no
    library; the distributions are read once per process (~0.2 s the first time, measured
    with TensorFlow 2.21's RECORD of 22,380 files; then ~0.4 ms). A new dict each call: callers
    may change theirs."""
    from hubensemble import __version__
    from hubensemble.installed import imported_release, same_name

    out = {"hubensemble": __version__, "python": platform.python_version()}
    for dist in VERSIONED:
        module = dist.replace("-", "_")
        out[module], owner = imported_release(module)
        if out[module] != "not installed" and (owner is None or not same_name(owner, dist)):
            out[f"{module}_distribution"] = owner or "none"
    return out


def metadata_path(model_dir) -> str:
    """Path of an export's metadata asset: MODEL_DIR/assets/hubensemble.json."""
    return os.path.join(os.fspath(model_dir), "assets", METADATA_ASSET)


@checks_keywords
def read_export_metadata(model_dir, *, strict: bool = True) -> dict:
    """An export's assets/hubensemble.json as a dict; {} when it is absent.

    The one reader of export metadata (``predict``, ``evaluate`` and ``report`` use it). A
    SavedModel not written by hubensemble has none; callers then fall back to what the
    signatures say. A file that is there but cannot be read or is not a JSON object raises
    HubensembleError naming it (`strict`; else {}, for the report): a new-user check found
    predict calling such an export "not written by hubensemble export" and evaluate
    matching its classes by position without a word.
    """
    path = metadata_path(model_dir)
    try:
        meta = read_json(path)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        meta = e
    if isinstance(meta, dict) or not strict:
        return meta if isinstance(meta, dict) else {}
    why = (f"{type(meta).__name__}: {meta}" if isinstance(meta, Exception)
           else f"a JSON {type(meta).__name__}, not an object")
    raise HubensembleError(f"{path} is damaged ({why}); write the export again "
                           f"({_export_again(model_dir)})")


def export_members_differ(record: dict, members, skipped=None) -> tuple[list, list] | None:
    """(trials of `record`, trials of `members`) when an export's metadata or a result made
    from it (`record`: its "members" and "skipped" dicts with "trial") holds other members
    than `members` (ensemble.json's, as dicts with "trial") less the ones the export left
    out (`record`'s and `skipped`'s, run.json's export record), or the same members with
    other "weight"s (when none was left out: then the export renormalised them); None when
    the same, or either names none. A stand-alone `ensemble` after the export makes it an
    earlier ensemble's (a new-user check: --with-replacement chose the same two members at
    0.833 / 0.167, where the export served 0.5 / 0.5, and nothing said so)."""
    done = [m.get("trial") for m in record.get("members") or [] if isinstance(m, dict)]
    left_out = {s.get("trial") for s in [*(record.get("skipped") or []), *(skipped or [])]
                if isinstance(s, dict)}
    now = [m.get("trial") for m in members or [] if m.get("trial") not in left_out]
    if not done or not now:
        return None
    if sorted(done) != sorted(now):
        return done, now
    weights = [{m.get("trial"): m.get("weight") for m in ms if isinstance(m, dict)}
               for ms in (record.get("members"), members)]
    if left_out or any(not isinstance(w.get(t), (int, float)) for w in weights for t in done):
        return None
    if all(abs(weights[0][t] - weights[1][t]) <= 1e-6 for t in done):
        return None
    return done, now


def check_metadata_fits(meta: dict, signature, model_dir) -> None:
    """HubensembleError unless export metadata `meta` of `model_dir` describes the model
    whose `signature` (a concrete function with a "probabilities" [N, C] output:
    serving_default, serve_bytes or serve_members) outputs: its class_names and num_classes,
    when given, count C (an unknown C is not checked). The one check `predict` and
    `evaluate` make: names by output index from another model's metadata name classes
    wrongly."""
    outputs = getattr(signature, "structured_outputs", {}).get("probabilities")
    n_outputs = getattr(outputs, "shape", [None])[-1]
    names, count = meta.get("class_names"), meta.get("num_classes")
    for what, n in (("class names", len(names) if isinstance(names, list) else None),
                    ("classes (num_classes)", count)):
        if n_outputs and isinstance(n, int) and n != n_outputs:
            raise HubensembleError(
                f"{metadata_path(model_dir)} lists {n} {what}, but the model outputs "
                f"{n_outputs} probabilities: the metadata is not this model's; "
                f"{model_way_on(model_dir, meta)}")


def check_tuner_folder(run_dir, sweep: str, flag: str | None = None) -> None:
    """HubensembleError (`fileio.tf_path`'s words: the path, the folder whose name holds the
    byte, "rename that folder in UTF-8"; with `flag`, a run folder still to make (fit's
    "--out", or "out" in Python), then ", or choose another FLAG folder", as
    `check_export_target` says of RUN/export) when a part of `sweep` goes through Keras Tuner
    (every sweep but the probe) and RUN/tuner's name is not UTF-8 (a run folder 'caf\\xe9'):
    Keras Tuner reaches it through TensorFlow only, which can neither write nor read it.
    `tune` checks it before its sweep is recorded, `fit` (and the command line, before
    TensorFlow) before its rank: a probe sweep, which writes nothing there, is not refused."""
    if any(part != UNTUNED_BY_KERAS_TUNER for part in sweep_parts(sweep)):
        try:
            tf_path(os.path.join(os.fspath(run_dir), TUNER_DIR))
        except HubensembleError as e:
            if flag is None:  # tune's existing --run: renaming it is the way
                raise
            raise RunError(f"{e}, or choose another {flag} folder") from None


def skipped_list(path, kind: str = "run") -> str:
    """Where the whole list of a data load's skipped files is recorded, as the clause that
    follows "and N more, " in a summary that names only three: kind "run", the run folder
    `path`'s run.json (`Run.attach_task`); "evaluate", the evaluation file `path` (`evaluate
    --out`), or with `path` None the option that would write it; the path on one line
    (text.escaped). Raises ValueError for another kind."""
    if kind == "run":
        return f"all listed in {escaped(os.path.join(path, RUN_FILE))} (data.task.skipped)"
    if kind == "evaluate":
        return (f"all listed in {escaped(os.fspath(path))} (task.skipped)" if path
                else "pass --out FILE to list them all")
    raise ValueError(f"kind must be 'run' or 'evaluate', got {kind!r}")


# --- an evaluation's record of the export it measured (robustness.json's "export") -------

def export_identity(model_dir, meta: dict | None = None) -> dict | None:
    """What identifies the export in folder `model_dir` for an evaluation of it (robustness.json's
    "export"): {"metadata_sha256": the sha256 of its assets/hubensemble.json, "created",
    "retrain_full": from that metadata (`meta`, read when not given)}; None without the
    asset (a SavedModel not written by hubensemble).

    The digest changes whenever `export` writes the folder again (the asset holds its
    "created" time and measured latencies, and its members), even with the same trial names:
    `export --retrain-full` after fit replaced the export the report's figures measured, and
    the members comparison (`export_members_differ`) found the same members. Only `export`
    writes the asset, so it also identifies the fit pipeline's export result."""
    try:
        digest = file_sha256(metadata_path(model_dir))
    except OSError:
        return None
    if meta is None:
        meta = read_export_metadata(model_dir, strict=False)
    return {"metadata_sha256": digest, "created": meta.get("created"),
            "retrain_full": meta.get("retrain_full")}


def evaluated_earlier_export(result: dict, model_dir) -> dict | None:
    """The record of the export an evaluation (`result`: robustness.json) measured (its
    "export": `export_identity`'s dict) when the export now in `model_dir` is another one
    (written again since, e.g. by `export --retrain-full`); None when it is the same, or when
    either cannot tell: an evaluation made before evaluations recorded their export, or a
    folder without the metadata asset (then the members comparison is all there is)."""
    done = result.get("export") if isinstance(result, dict) else None
    if not isinstance(done, dict) or not done.get("metadata_sha256") or not model_dir:
        return None
    now = export_identity(model_dir)
    if now is None or now["metadata_sha256"] == done["metadata_sha256"]:
        return None
    return done


def describe_export(record: dict) -> str:
    """`export_identity`'s record in words: "written 2026-12-04 15:40:01+00:00, members
    retrained on train + val" (the parts it holds; "" for none; the time by
    `text.shown_time`)."""
    parts = [f"written {shown_time(record['created'])}" if record.get("created") else "",
             {True: "members retrained on train + val",
              False: "members trained on train"}.get(record.get("retrain_full"), "")]
    return ", ".join(p for p in parts if p)


# Readers of an export's folder and of an evaluation file moved to their own modules when this
# one reached 692 lines; their importers still name them here (a refactor moved no caller).
_MOVED = {**dict.fromkeys(("unloadable_path", "check_saved_model_folder",
                           "check_saved_model_files", "saved_model_problem", "is_export",
                           "made_by_hubensemble", "is_tflite_export", "check_export_target",
                           "SAVEDMODEL_ENTRIES", "foreign_entries", "replaceable_export",
                           "load_saved_model"), "hubensemble.exportchecks"),
          **dict.fromkeys(("write_evaluation", "read_evaluation", "check_evaluation_target"),
                          "hubensemble.evaluationfile")}


def __getattr__(name):
    """A name `_MOVED` lists, from its module (imported by name: it imports this one)."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'hubensemble.formats' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
