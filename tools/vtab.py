"""VTAB-1k runner: `hubensemble.fit` on each of the 19 tasks, then the paper's Table 1 layout.

    python tools/vtab.py --catalogue catalogue/bit_in21k_experts.yaml \\
        --data-dir ~/tensorflow_datasets --out runs/vtab [--tasks caltech101 dmlab …] \\
        [--profile paper|cpu|quick] [--top-k K] [--sweep …] [--budget L] [--restart]
    python tools/vtab.py --list

Task definitions follow google-research/task_adaptation (task_adaptation/data/*.py): the
same tfds names, versions and configs, the same features turned into labels, and the same
VTAB-1k cut of each data set (its "train800" / "val200" splits and its "test" split).
See docs/vtab.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: True while the script (run as a program) loads its modules and parses its arguments: a
#: Ctrl-C or SIGTERM then ends it quietly with 130 / 143, as `hubensemble` does while its
#: command line loads (errors.stop_outside_commands); it printed a Python traceback (a
#: KeyboardInterrupt inside numpy's or hubensemble's imports), or SIGTERM ended it without a
#: code of its own (-15). `_main` puts Python's handlers back once it can say the stop.
_LOADING: list = []


def _stopped_loading(signum, frame):
    os._exit(128 + signum)  # nothing has been written yet: nothing to say or clean up


def _loaded():
    """The script's own stop handling from here on (`_main`'s): Python's handlers back."""
    if _LOADING:
        import signal

        _LOADING.clear()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    import signal

    _LOADING.append(True)
    for _signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signum, _stopped_loading)

import numpy as np  # noqa: E402

# The script's modules beside it (vtab_tasks: the 19 tasks; vtab_tables: the results' tables):
# found when it is run as a program (its folder is sys.path[0]) and when it is loaded from its
# file (tests, importlib). Their names stay importable from here, as before the split.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from vtab_tables import format_list, format_markdown, format_table, summarise  # noqa: E402
from vtab_tasks import (ALIASES, GROUP_SPELLINGS, GROUP_TITLES, GROUPS,  # noqa: E402,F401
                        TASK_LIST, TASKS, VtabTask, clevr_closest_distance, clevr_count,
                        dsprites_orientation, dsprites_x_position,
                        kitti_closest_vehicle_distance, label, select_tasks,
                        smallnorb_azimuth, smallnorb_elevation)

log = logging.getLogger("hubensemble.vtab")

RESULTS_JSON = "vtab.json"
RESULTS_MD = "vtab.md"
# Written into a task's run folder once its fit has finished: what it was fitted with.
TASK_RECORD = "vtab_task.json"
ERROR_FILE = "vtab_error.txt"

# VTAB-1k (Zhai et al. 2019): 800 training and 200 validation examples per task.
TRAIN_EXAMPLES, VAL_EXAMPLES = 800, 200


# --------------------------------------------------------------------------- splits


def vtab_splits(task: VtabTask, train_size: int | None = None) -> dict[str, str]:
    """tfds split strings of task_adaptation's train800 / val200 / test for `task`;
    `train_size` is the prepared train split's size (default: the one task_adaptation saw)."""
    n_total = train_size if train_size else task.train_size
    tr = f"train[:{TRAIN_EXAMPLES}]"
    if task.cut == "official":
        return {"train": tr, "val": f"validation[:{VAL_EXAMPLES}]", "test": task.test_split}
    if task.cut == "test_half":
        return {"train": tr, "val": f"test[:{VAL_EXAMPLES}]", "test": "test[50%:]"}
    if not n_total:
        raise ValueError(f"{task.name}: the train split size is unknown")
    n_train = task.train_percent * n_total // 100
    va = f"train[{n_train}:{n_train + VAL_EXAMPLES}]"
    if task.cut == "train_tail":
        return {"train": tr, "val": va, "test": task.test_split}
    if task.cut == "train_only":
        n_val = task.val_percent * n_total // 100
        return {"train": tr, "val": va, "test": f"train[{n_train + n_val}:]"}
    raise ValueError(f"{task.name}: unknown cut {task.cut!r}")


# --------------------------------------------------------------------------- data


class _VariantNotes(logging.Filter):
    """Keeps tfds' "Variant folder F has no dataset_info.json" (or features.json, or "has
    invalid version") warnings off absl's log while `_builder` opens a data set, as
    [(folder, what it lacks)] of the folders that exist: tfds says one for every version
    it looks for, so an unprepared kitti printed six before the runner's own "not prepared"
    error; a folder that exists without the file (a copy or build that did not finish) is
    the clue, which `_half_copied` says once instead."""

    def __init__(self):
        super().__init__()
        self.folders: list[tuple[str, str]] = []

    def filter(self, record):
        if not str(record.msg).startswith("Variant folder %s has "):
            return True
        args = tuple(record.args or ())
        if args and os.path.isdir(str(args[0])):
            lacks = (f"no {args[1]}" if "has no" in record.msg and len(args) > 1
                     else "an invalid version name")
            if (str(args[0]), lacks) not in self.folders:
                self.folders.append((str(args[0]), lacks))
        return False


#: {(tfds spec, data dir): [(folder, what it lacks)]}: the version folders of a data set that
#: exist but that tfds cannot read (`_VariantNotes`), as `_builder` last found them.
_HALF_COPIED: dict[tuple, list[tuple[str, str]]] = {}
#: The folders `_half_copied` warned of, so each is said once per process.
_SAID_HALF: set = set()


def _half_copied(task: VtabTask, data_dir) -> str:
    """"; FOLDER exists but has no dataset_info.json: …" for each version folder of `task`'s
    data set that exists without what tfds needs to read it (`_VariantNotes`), else ""."""
    folders = _HALF_COPIED.get((task.tfds_spec, data_dir)) or []
    return "".join(f"; {folder} exists but has {lacks}: a copy or a build that did not "
                   f"finish (copy the whole folder again, or rebuild it)"
                   for folder, lacks in folders)


def _builder(task: VtabTask, data_dir):
    """The tfds builder of the first of `task.versions` prepared in `data_dir` (else the first
    one tfds can open, whose reading then explains how to prepare it). tfds' warnings about
    version folders it cannot read are kept for the errors (`_VariantNotes`); a folder of a
    version tried before the prepared one is warned of once."""
    import tensorflow_datasets as tfds

    from hubensemble.errors import DataError

    first, builder, problems, notes = None, None, [], _VariantNotes()
    absl_log = logging.getLogger("absl")
    absl_log.addFilter(notes)
    try:
        for version in task.versions:
            try:
                builder = tfds.builder(f"{task.tfds_spec}:{version}", data_dir=data_dir)
            except Exception as e:  # noqa: BLE001 - tfds raises several types for one problem
                problems.append(f"{version}: {' '.join(str(e).split())[:200]}")
                continue
            if builder.is_prepared():
                break
            first, builder = first or builder, None
    finally:
        absl_log.removeFilter(notes)
    _HALF_COPIED[(task.tfds_spec, data_dir)] = notes.folders
    if builder is not None:
        for folder, lacks in notes.folders:
            if folder not in _SAID_HALF:
                _SAID_HALF.add(folder)
                log.warning("%s: tfds folder %s has %s (a copy or a build that did not "
                            "finish?); using %s", task.name, folder, lacks, builder.data_dir)
        return builder
    if first is None:
        versions = "version" if len(task.versions) == 1 else "versions"
        raise DataError(f"{task.name}: tfds cannot open {task.tfds_spec} at {versions} "
                        f"{', '.join(task.versions)} ({'; '.join(problems)})"
                        + _half_copied(task, data_dir))
    return first


def _train_size(builder):
    """The prepared train split's size, or None when tfds does not know it."""
    splits = builder.info.splits
    if splits and "train" in splits:
        return int(splits["train"].num_examples) or None
    return None


def _prepare_hint(task, data_dir):
    # tfds builds its default version, which is one of `versions` for every task.
    where = f" --data_dir {data_dir}" if data_dir else ""
    manual = " --manual_dir DIR (downloaded by hand, see docs/vtab.md)" \
        if "manual download" in task.note else ""
    return f"prepare it once with `tfds build {task.tfds_spec}{where}{manual}`"


def _read_split(builder, task, split, limit, progress):
    """(images, labels, decoded) of `split`: uint8 RGB [H, W, 3] images, int64 labels [N] and
    [(index, `Decoded` or None)] of each stored image file (`decode_stored`): what the
    `tfds:` loader counts of it (orientation tag, TIFF turned, format serve_bytes refuses,
    dark 16-bit, shrunk: `note_decoded`, which names each "KEY[index]").

    An Image feature of uint8 pixels (stored as image files: caltech101, pets, flowers, …)
    is read from its bytes by the owner of tfds decoding, `hubensemble.data.tfds`
    (`stored_encoded` / `decode_stored`: the decode policy, serve_bytes' pixels), as `tfds:`
    data is; tfds' own decode gave other pixels of the same JPEGs and could not read a GIF.
    Raises DataError naming the task, split and example for bytes the policy refuses."""
    import tensorflow_datasets as tfds

    from hubensemble.data import to_rgb_uint8
    from hubensemble.data.tfds import decode_stored, stored_encoded

    encoded = stored_encoded(builder.info.features[task.image_key])
    keep = (task.image_key,) + tuple(task.features)
    # Only the features the task reads are decoded (not pets' masks and boxes, not the
    # scene's other fields): tfds' PartialDecoding, the image's bytes kept when encoded.
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders=tfds.decode.PartialDecoding(
        {k: True for k in keep},
        decoders={task.image_key: tfds.decode.SkipDecoding()} if encoded else None))
    if limit:
        ds = ds.take(int(limit))
    images, labels, decoded = [], [], []
    it = tfds.as_numpy(ds)
    if progress:
        from hubensemble.terminal import progress_bar
        it = progress_bar(it, desc=f"{task.name} {split}", unit="img", leave=False)
    for i, ex in enumerate(it):
        try:
            labels.append(task.label_fn(ex))
        except (KeyError, IndexError, TypeError, ValueError) as e:
            from hubensemble.errors import DataError
            raise DataError(f"{task.name}: {task.label_fn.__name__} cannot label example {i} "
                            f"of {split} ({type(e).__name__}: {e}); is this the data set "
                            f"task_adaptation used ({task.tfds_spec}:"
                            f"{'|'.join(task.versions)})?") from None
        if encoded:
            im, got = decode_stored(ex[task.image_key], task.tfds_spec, split, i)
            decoded.append((i, got))
        else:
            im = np.asarray(ex[task.image_key])
        if im.ndim == 2:
            im = im[..., None]
        if task.pixel_scale != 1:
            im = np.clip(im.astype(np.int64) * task.pixel_scale, 0, 255).astype(np.uint8)
        images.append(to_rgb_uint8(im, what=f"{task.name} {split}"))
    return images, np.asarray(labels, np.int64), decoded


def load_vtab_task(task: VtabTask, data_dir=None, *, test_limit=None, min_per_class=None,
                   progress=False):
    """Reads one VTAB-1k task from prepared tfds data into a validated hubensemble Task.

    Returns (Task, info) where info records the tfds version used, the split strings and
    notes (e.g. a train split whose size differs from the one task_adaptation cut)."""
    from hubensemble.data import Split, Task, validate_task
    from hubensemble.data.sniff import TFDS_DECODED_WORDS
    from hubensemble.data.tfds import decode_notes, note_decoded, stored_encoded, tfds_data_dir
    from hubensemble.errors import DataError
    from hubensemble.text import counted

    data_dir = os.path.expanduser(data_dir) if data_dir else None
    builder = _builder(task, data_dir)
    info = builder.info
    notes = []
    train_size = _train_size(builder)
    if train_size and task.train_size and train_size != task.train_size:
        notes.append(f"tfds train split has {train_size} examples, task_adaptation's had "
                     f"{task.train_size}: val/test offsets follow the prepared data")
    for note in notes:
        log.warning("%s: %s", task.name, note)
    splits = vtab_splits(task, train_size)
    parts, noted = {}, decode_notes()
    for key, split in splits.items():
        try:
            images, labels, decoded = _read_split(
                builder, task, split, test_limit if key == "test" else None, progress)
            for i, got in decoded:  # counted and named as data.tfds does
                note_decoded(noted, f"{key}[{i}]", got)
        except AssertionError:
            raise DataError(f"{task.name}: tfds {task.tfds_spec} (version "
                            f"{' or '.join(task.versions)}) is not prepared in "
                            f"{data_dir or 'the default tfds data dir ' + tfds_data_dir()}; "
                            f"{_prepare_hint(task, data_dir)}"
                            + _half_copied(task, data_dir)) from None
        if not len(labels):
            raise DataError(f"{task.name}: split {split!r} ({key}) is empty")
        bad = (labels < 0) | (labels >= task.num_classes)
        if bad.any():
            n = int(bad.sum())
            raise DataError(f"{task.name}: {counted(n, f'{key} example')} "
                            f"{'maps' if n == 1 else 'map'} to no class "
                            f"of 0..{task.num_classes - 1} (labels "
                            f"{sorted(set(labels[bad].tolist()))[:5]}) with "
                            f"{task.label_fn.__name__}; is this the data set task_adaptation "
                            f"used ({task.tfds_spec}:{'|'.join(task.versions)})?")
        same = len({im.shape for im in images}) == 1
        parts[key] = Split(images=np.stack(images) if same else images, labels=labels)
    names = task.class_names
    feature = info.features[task.features[0]] if task.features[0] in info.features else None
    if names is None and getattr(feature, "num_classes", None) == task.num_classes:
        names = tuple(feature.names)
    names = list(names or (str(i) for i in range(task.num_classes)))
    shown = " / ".join(splits.values())
    if stored_encoded(info.features[task.image_key]):  # as data.tfds says it (datachange)
        shown += f"; its {task.image_key!r} {TFDS_DECODED_WORDS}"
    result = Task(name=task.name, source=f"VTAB-1k {task.name}: tfds {task.tfds_spec}:"
                                         f"{builder.version} ({shown})",
                  class_names=names, train=parts["train"], val=parts["val"],
                  test=parts["test"], synthetic=task.synthetic, flip=task.flip, **noted)
    mpc = task.min_per_class if min_per_class is None else int(min_per_class)
    validate_task(result, min_per_class=mpc)
    return result, {"tfds": f"{task.tfds_spec}:{builder.version}", "splits": splits,
                    "notes": notes, "min_per_class": mpc,
                    "sizes": {k: len(v) for k, v in parts.items()}}


# --------------------------------------------------------------------------- running


def _options_key(options) -> dict:
    """The FitOptions that change a fit's results (FitOptions.STAGE_FIELDS)."""
    fields = sorted({f for fs in options.STAGE_FIELDS.values() for f in fs})
    return json.loads(json.dumps({f: getattr(options, f) for f in fields}, default=str))


def _finished(run_dir: Path, key: dict):
    """The stored record of a finished fit made with `key`, else None."""
    from hubensemble.fileio import read_json

    path = run_dir / TASK_RECORD
    if not path.exists() or not (run_dir / "ensemble.json").exists():
        return None
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    return record if record.get("key") == key else None


def _metrics_of(run_dir: Path) -> dict:
    from hubensemble.ensemble import read_ensemble

    ensemble = read_ensemble(run_dir)
    test = ensemble.get("test") or {}
    return {"ensemble": test.get("ensemble"), "best_single": test.get("best_single"),
            "members": len(ensemble.get("members") or [])}


#: The label functions that return one integer feature as stored (`label`, smallnorb's): the
#: `tfds:` loader reads it so, with that feature as its label_key.
FEATURE_AS_LABEL = (label, smallnorb_azimuth, smallnorb_elevation)


def tfds_splits(task: VtabTask, info: dict, test_limit=None) -> dict | None:
    """The `tfds:` loader's split strings ({"train", "val", "test"}) that read the examples
    `load_vtab_task` read for `task` (its `info`), with `task.features[0]` as its label_key,
    or None when that loader cannot read the task as the runner does: labels a label
    function makes from other features (clevr, kitti, dsprites: not `FEATURE_AS_LABEL`),
    pixels scaled (dsprites), class names of the runner's own, or a --test-limit of a test
    split that is already a slice ("test[50%:]")."""
    if (task.label_fn not in FEATURE_AS_LABEL or len(task.features) != 1
            or task.pixel_scale != 1 or task.class_names is not None):
        return None
    splits = dict(info["splits"])
    if test_limit:
        if "[" in splits["test"]:
            return None
        splits["test"] = f"{splits['test']}[:{int(test_limit)}]"  # as the reader's take(N)
    return splits


def vtab_data_args(task: VtabTask, info: dict, data_dir=None, *, test_limit=None):
    """The DataArgs a task's run records (run.json "data" -> "args"; the report's "data
    spec"). A task the `tfds:` loader reads as the runner does (`tfds_splits`: its labels
    are one tfds feature as stored) records that loader's spec, `tfds:NAME[/CONFIG]:VERSION`
    with its split strings and data dir, reloadable: `evaluate --data` takes it, and the
    stage commands load it again (and compare its fingerprint). Any other records
    `vtab:TASK`, not reloadable: a name for people, which no command loads (docs/vtab.md
    §3; `data.specs.parse_spec` says so when it is passed)."""
    from hubensemble.rundir import DataArgs

    kept = dict(data_dir=data_dir, image_key=task.image_key, synthetic=task.synthetic,
                flip=task.flip, min_per_class=info["min_per_class"])
    splits = tfds_splits(task, info, test_limit)
    if splits is not None:
        return DataArgs(spec=f"tfds:{info['tfds']}", splits=splits,
                        label_key=task.features[0], **kept)
    return DataArgs(spec=f"vtab:{task.name}", splits=info["splits"],
                    label_key=",".join(task.features), reloadable=False, **kept)


def run_task(task: VtabTask, catalogue, out: Path, *, data_dir=None, options=None,
             restart=False, test_limit=None, min_per_class=None, progress=True,
             cache_dir=None, use_cache=True) -> dict:
    """fit() on one VTAB task into OUT/<task>/; returns its result record (raises on error).

    A task fitted before with the same catalogue, options, data and splits is reused
    without reading its data again; anything else goes through fit(), which resumes."""
    from hubensemble.catalogue import ModuleSpec, load_catalogues
    from hubensemble.fileio import atomic_write_json
    from hubensemble.pipeline import FitOptions, fit
    from hubensemble.rank import catalogue_fingerprint

    options = options or FitOptions()
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    run_dir = Path(out) / task.name
    start = time.time()
    specs = [c for c in catalogue if isinstance(c, ModuleSpec)]
    paths = [c for c in catalogue if not isinstance(c, ModuleSpec)]
    specs += load_catalogues(paths) if paths else []
    builder = _builder(task, data_dir)
    key = {"task": task.to_json(), "tfds": f"{task.tfds_spec}:{builder.version}",
           "splits": vtab_splits(task, _train_size(builder)), "test_limit": test_limit,
           "min_per_class": min_per_class,
           "data_dir": os.path.abspath(data_dir) if data_dir else None,
           "catalogue": catalogue_fingerprint(specs), "options": _options_key(options)}
    key = json.loads(json.dumps(key, default=str))
    record = None if restart else _finished(run_dir, key)
    if record is not None:
        result = dict(record["result"], **_metrics_of(run_dir), reused=True)
        return dict(result, seconds=round(time.time() - start, 2))
    if progress:
        print(f"vtab: {task.name}: loading tfds {task.tfds_spec}", file=sys.stderr)
    data, info = load_vtab_task(task, data_dir, test_limit=test_limit,
                                min_per_class=min_per_class, progress=progress)
    data_args = vtab_data_args(task, info, data_dir, test_limit=test_limit)
    # fit says the data's summary (stderr with progress, and RUN/log.txt): not said here too.
    fit(specs, data, run_dir, data_args=data_args, restart=restart, progress=progress,
        cache_dir=cache_dir, use_cache=use_cache, options=options)
    result = {"name": task.name, "group": task.group, "status": "ok", "run_dir": str(run_dir),
              "num_classes": task.num_classes, **info}
    atomic_write_json(run_dir / TASK_RECORD, {"key": key, "result": result})
    (run_dir / ERROR_FILE).unlink(missing_ok=True)  # a failure of an earlier attempt
    return dict(result, **_metrics_of(run_dir), reused=False,
                seconds=round(time.time() - start, 2))


def write_report(out: Path, report: dict) -> tuple[Path, Path]:
    from hubensemble.fileio import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULTS_JSON, report)
    atomic_write_text(out / RESULTS_MD, format_markdown(report))
    return out / RESULTS_JSON, out / RESULTS_MD


def check_inputs(catalogue, out: Path, data_dir=None) -> list:
    """The modules of `catalogue` (ModuleSpecs and catalogue files), after checking what every
    task needs, before any task: raises HubensembleError (CatalogueError, DataError) when a
    catalogue is missing or invalid, when the tensorflow_datasets folder (`data_dir`, else
    $TFDS_DATA_DIR, else ~/tensorflow_datasets) is no folder, or when the results folder `out`
    cannot be made or written. Each of these failed every task alike, one by one, with a
    FAILED row per task (a missing --data-dir read "not prepared in DIR"), or, for an --out
    that is a file, a traceback."""
    from hubensemble.catalogue import ModuleSpec, load_catalogues
    from hubensemble.data.tfds import tfds_data_dir
    from hubensemble.errors import DataError, HubensembleError
    from hubensemble.fileio import make_dirs
    from hubensemble.text import absolute, escaped

    paths = [c for c in catalogue if not isinstance(c, ModuleSpec)]
    modules = [c for c in catalogue if isinstance(c, ModuleSpec)]
    modules += load_catalogues(paths) if paths else []
    root = tfds_data_dir(data_dir)
    if not os.path.isdir(root):
        what = ("--data-dir" if data_dir else "$TFDS_DATA_DIR" if os.environ.get(
            "TFDS_DATA_DIR") else "the default data dir (no --data-dir, no $TFDS_DATA_DIR)")
        why = "is a file, not a folder" if os.path.exists(root) else "does not exist"
        # Absolute, a name's bytes that are not UTF-8 escaped: "--data-dir tfds\udcff".
        raise DataError(f"{what} {escaped(absolute(root))} {why}: it is the tensorflow_datasets "
                        "folder every task reads its prepared data set from; pass --data-dir "
                        "DIR where they are prepared (docs/vtab.md, 1. Prepare the data)")
    make_dirs(out, "pass another --out folder")
    if not os.access(out, os.W_OK | os.X_OK):
        raise HubensembleError(f"the results folder {escaped(absolute(out))} is not writable "
                               "by you; make it "
                               "writable or pass another --out folder")
    return modules


def run_vtab(catalogue, out, *, tasks=None, data_dir=None, options=None, restart=False,
             test_limit=None, min_per_class=None, progress=True, cache_dir=None,
             use_cache=True) -> dict:
    """fit() over VTAB-1k tasks (VtabTask records or names; default all 19) into OUT/<task>/.

    A task that fails is recorded (message in OUT/vtab.json, traceback in
    OUT/<task>/vtab_error.txt) and the others go on. Writes OUT/vtab.json and OUT/vtab.md
    after every task and returns the report (per-task results, group and overall means).
    What every task needs is checked first (`check_inputs`): a missing catalogue, data folder
    or unwritable OUT raises HubensembleError before any task, and the command line exits 2."""
    from hubensemble.fileio import atomic_write_text
    from hubensemble.pipeline import FitOptions
    from hubensemble.text import absolute

    options = options or FitOptions()
    # A relative OUT or data folder is the working folder's when the runner starts, named
    # absolute from here on: vtab.json recorded "data_dir" and each "run_dir" as typed, which
    # named nothing from another folder (each run.json records its data folder absolute).
    out = Path(absolute(out))
    data_dir = absolute(os.path.expanduser(data_dir)) if data_dir else None
    if isinstance(catalogue, (str, os.PathLike)):
        catalogue = [catalogue]
    catalogue = list(catalogue)
    modules = check_inputs(catalogue, out, data_dir)
    chosen = []
    for item in tasks or TASKS.values():
        for task in [item] if isinstance(item, VtabTask) else select_tasks([item]):
            if task not in chosen:
                chosen.append(task)
    report = {"benchmark": "VTAB-1k", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "catalogue": [str(getattr(c, "source", None) or getattr(c, "name", c))
                            for c in catalogue],
              "data_dir": data_dir, "test_limit": test_limit,
              "options": json.loads(json.dumps(dataclasses.asdict(options), default=str)),
              "asked": [t.name for t in chosen], "tasks": []}
    for i, task in enumerate(chosen, 1):
        if progress:
            print(f"vtab: [{i}/{len(chosen)}] {task.name} ({task.group})", file=sys.stderr)
        try:
            result = run_task(task, modules, out, data_dir=data_dir, options=options,
                              restart=restart, test_limit=test_limit,
                              min_per_class=min_per_class, progress=progress,
                              cache_dir=cache_dir, use_cache=use_cache)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one task's failure must not stop the others
            from hubensemble.errors import reraise_stop
            reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
            message = f"{type(e).__name__}: {e}"
            (out / task.name).mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / task.name / ERROR_FILE, traceback.format_exc())
            result = {"name": task.name, "group": task.group, "status": "failed",
                      "error": message, "num_classes": task.num_classes,
                      "run_dir": str(out / task.name)}
            if progress:
                print(f"vtab: {task.name} FAILED: {message}", file=sys.stderr)
        report["tasks"].append(result)
        report["summary"] = summarise(report["tasks"], report["asked"])
        write_report(out, report)
    report["summary"] = summarise(report["tasks"], report["asked"])
    write_report(out, report)
    return report


# --------------------------------------------------------------------------- command line


def build_parser():
    from hubensemble.arguments import Parser, integer
    from hubensemble.cliargs import add_fit_args

    # hubensemble's parser class: it checks what an option needs (--max-k: --threshold or
    # --greedy), as `hubensemble fit` does.
    p = Parser(
        prog="python tools/vtab.py",
        description="Run hubensemble fit on the 19 VTAB-1k tasks (data prepared with "
                    "tensorflow_datasets) and print per-task test accuracy, the group means "
                    "(Natural, Specialised, Structured) and the VTAB-1k mean, like Table 1 "
                    "of the paper. Writes OUT/<task>/ (one run folder per task), "
                    "OUT/vtab.json and OUT/vtab.md.",
        epilog="tasks: " + ", ".join(TASKS) + " (groups: " + ", ".join(GROUPS) + ")",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalogue", nargs="+", metavar="FILE", help="catalogue YAML file(s)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="tensorflow_datasets folder holding the prepared data sets "
                        "(default ~/tensorflow_datasets or $TFDS_DATA_DIR; a relative path "
                        "is the working folder's, recorded absolute)")
    p.add_argument("--out", metavar="DIR", help="results folder: OUT/<task>/ per task (a "
                   "relative path is the working folder's, recorded absolute)")
    p.add_argument("--tasks", nargs="+", metavar="NAME",
                   help="only these tasks (names below, or a group name; spaces or commas "
                        "between them); default all 19")
    p.add_argument("--list", action="store_true", help="print the 19 tasks and exit")
    # hubensemble's integer checks and words ("argument --test-limit: must be an integer
    # >= 1, got '0'"), where argparse said "invalid int value: 'abc'" and a range check
    # after it said "--test-limit must be >= 1" without the value.
    p.add_argument("--test-limit", type=integer(1), default=None, metavar="N",
                   help="evaluate on the first N test examples only (saves memory: VTAB "
                        "test sets hold up to 73,728 images; not comparable with the paper)")
    p.add_argument("--min-per-class", type=integer(0), default=None, metavar="N",
                   help="fewest train[:800] examples a class may have (default per task: 0 "
                        "for the 100+ class tasks, else 2)")
    p.add_argument("--corruptions", dest="corruptions", action="store_true",
                   help="also run the robustness evaluation on corrupted test images "
                        "(off by default here: it multiplies the test-set work)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_fit_args(p)
    p.set_defaults(corruptions=False)
    return p


def options_from_args(args):
    """The FitOptions of a parsed command line (every option of hubensemble.options whose
    record is "fit")."""
    from hubensemble import options
    from hubensemble.pipeline import FitOptions

    return FitOptions(**{o.name: getattr(args, o.name)
                         for o in options.options_for(record="fit")})


def main(argv=None) -> int:
    """Runs the command line `argv`; returns the exit code: 0 every task finished, 1 one
    failed, 2 usage or a run-wide error, 130 on Ctrl-C, 143 on SIGTERM."""
    from hubensemble.terminal import terminal_log

    parser = build_parser()
    args = parser.parse_args(argv)
    # As `hubensemble fit`: TensorFlow's C++ start-up notices off, and log records on stderr
    # through terminal_log (warnings and up; errors only with -q). Without it, the first
    # absl import called logging.basicConfig(), and every fit's INFO records, trial failures'
    # tracebacks included, were printed as "INFO:hubensemble.tune.train:…" (a new-user check).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from hubensemble.lockwords import command_line

    with terminal_log(args), command_line():  # refusals and advice in a command's words
        return _main(parser, args)


def _main(parser, args) -> int:
    from hubensemble.errors import HubensembleError, Terminated, sigterm_interrupts
    from hubensemble.text import absolute

    try:
        _loaded()  # a stop from here on is said: "vtab: interrupted; …"
        tasks = select_tasks(args.tasks)
        if args.list:  # of the --tasks given (all 19 without)
            print(format_list(tasks))
            return 0
        if not args.catalogue or not args.out:
            parser.error("--catalogue and --out are required (or --list)")
        # What every task needs, before TensorFlow loads (seconds): a mistyped path is
        # refused at once. run_vtab checks again for Python callers (milliseconds).
        check_inputs(args.catalogue, Path(args.out), args.data_dir)
        from hubensemble import _tf

        os.environ[_tf.QUIET_ENV] = "1"  # as `hubensemble fit`: no oneDNN / CUDA notices
        _tf.import_tensorflow()
        with sigterm_interrupts():  # SIGTERM (a scheduler's limit) stops it as Ctrl-C does
            report = run_vtab(args.catalogue, args.out, tasks=tasks, data_dir=args.data_dir,
                              options=options_from_args(args), restart=args.restart,
                              test_limit=args.test_limit, min_per_class=args.min_per_class,
                              progress=not args.quiet, cache_dir=args.cache_dir,
                              use_cache=args.use_cache)
    except HubensembleError as e:
        print(f"vtab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        what, code = ("terminated (SIGTERM)", 143) if isinstance(e, Terminated) else (
            "interrupted", 130)
        print(f"vtab: {what}; run the same command again to resume", file=sys.stderr)
        return code
    print(format_table(report))
    out = Path(absolute(args.out))  # the working folder's, as run_vtab wrote it
    print(f"\nwrote {out / RESULTS_JSON} and {out / RESULTS_MD}")
    return 0 if all(r["status"] == "ok" for r in report["tasks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
