"""The export stage's record in an export's metadata (metadata.json): the task it was made on
(with how the run split it and its files' digests), the members, the metrics and their
source, the serving signatures' inputs and outputs in words, and the versions that wrote it.

The writers add the rest (`saved.save_export`, `tflite`: format, classes, reload check, …);
`formats.read_export_metadata` reads it back; docs/export.md describes every field.
"""

from __future__ import annotations

import hashlib
import os

from hubensemble.formats import BYTES_SIGNATURE, MEMBERS_SIGNATURE, SERVING_SIGNATURE, versions
from hubensemble.text import counted, time_stamp


#: The checkpoint entry that holds the object graph (a proto), not a variable's value.
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def variables_digest(saved_model_dir) -> str:
    """The sha256 (64 hex digits) of the values of every variable in the SavedModel at
    `saved_model_dir` (its variables/variables checkpoint), each by its checkpoint key (the
    object path, e.g. "variables/3/.ATTRIBUTES/VARIABLE_VALUE"), with its dtype and shape,
    in key order: the same for two exports that hold the same values at the same paths,
    whatever file layout the TensorFlow that wrote them chose. Reads every variable (seconds
    per GB). Raises tf.errors.NotFoundError / ValueError for a folder without a checkpoint.
    """
    import numpy as np
    import tensorflow as tf

    from hubensemble.fileio import tf_path

    reader = tf.train.load_checkpoint(tf_path(os.path.join(os.fspath(saved_model_dir),
                                                           "variables", "variables")))
    dtypes = reader.get_variable_to_dtype_map()
    digest = hashlib.sha256()
    for key in sorted(k for k in dtypes if k != _OBJECT_GRAPH_KEY):
        value = np.asarray(reader.get_tensor(key))
        # The array's own buffer, not a copy of it (a backbone's kernels: hundreds of MB).
        raw = (b"\0".join(v if isinstance(v, bytes) else str(v).encode() for v in value.ravel())
               if value.dtype == object else np.ascontiguousarray(value))
        head = f"{key}\t{dtypes[key].name}\t{list(value.shape)}\t{memoryview(raw).nbytes}\n"
        digest.update(head.encode())
        digest.update(raw)
    return digest.hexdigest()


def digest_record(saved_model_dir) -> dict:
    """What the export's metadata records as "digest" for the SavedModel at
    `saved_model_dir`: {"variables_sha256": `variables_digest`}, the same for every export of
    one run's members, where the folder's bytes are not always (docs/export.md, "Reproducible
    bytes")."""
    return {"variables_sha256": variables_digest(saved_model_dir)}


def split_record(meta) -> dict | None:
    """How the run split its data (run.json data.args: seed, val_fraction, test_fraction,
    dedupe), for `evaluate --data` on the export's own class folder from anywhere
    (data.specs.load_test_set's trained_split); for tfds: data also "tfds", the tfds split
    string each split was read from ({train|val|test: str, or None for a split switched
    off}: VTAB-1k's with the run's --split overrides), which `evaluate --data` of the same
    tfds data set reads when given no --split string (`evaluationtask.own_tfds_split`), and
    "tfds_keys", the features fit read ({"label_key", "image_key"}: str, run.json's
    --label-key / --image-key or their defaults), which it reads when given no key
    (`evaluationtask.own_tfds_keys`; an export written before has none: read as before).
    None for data from Python."""
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.tfds import _resolve_splits
    from hubensemble.errors import DataError
    from hubensemble.rundir import Run

    args = Run.data_part(meta, "args")  # (damaged: None, as for data from Python)
    if not args.get("spec"):
        return None
    record = {k: args[k] for k in ("seed", "val_fraction", "test_fraction", "dedupe")
              if k in args}
    try:
        if parse_spec(args["spec"])[0] == "tfds":
            record["tfds"] = _resolve_splits(args.get("splits"))
            record["tfds_keys"] = {k: args[k] for k in ("label_key", "image_key")
                                   if isinstance(args.get(k), str)}
    except (DataError, AttributeError, TypeError):  # a damaged record: as before, none
        pass
    return record


def data_files_record(meta, task) -> dict | None:
    """The export's record of its data's files (`heldout.files_record`) for data read from a
    folder (run.json data.args "spec" folder:DIR), else None."""
    from hubensemble.data.specs import parse_spec
    from hubensemble.heldout import files_record

    from hubensemble.rundir import Run

    spec = Run.data_part(meta, "args").get("spec")
    if not isinstance(spec, str) or not spec.lower().startswith("folder:"):
        return None
    return files_record(task, os.path.expanduser(parse_spec(spec)[1]))


def export_metadata(ensemble, members, skipped, task, *, retrain_full, test=None, split=None,
                    files=None, run=None, train_batch_size=None) -> dict:
    """The export's metadata (a JSON-able dict) for `ensemble` (ensemble.json), its exported
    `members` (ExportMember: their `info`), the members left out (`skipped`) and `task`;
    `test`: the exported members' test metrics after retraining (`retrain_full`), else
    ensemble.json's; `split` (`split_record`), `files` (`data_files_record`) and `run` (the
    run's record, `exportfolder.run_record`) when known; `train_batch_size`: the batch the
    members were retrained in (--train-batch-size; None: each one's recorded batch). Its
    notes say what the metrics describe."""
    notes = []
    if retrain_full:
        notes.append("the members were retrained on train + val after selection, so the "
                     "validation metrics describe the members before retraining"
                     + ("; test is measured on the retrained members, test_before_retraining "
                        "is ensemble.json's" if test else "")
                     + (f"; they were retrained in batches of {int(train_batch_size)} images, "
                        "each learning rate x that / its recorded batch"
                        if train_batch_size else ""))
    if skipped:
        # The fact, in no caller's words: "(--skip-missing)" was stored for a Python caller's
        # skip_missing=True too, and the metadata outlives the command that wrote it.
        notes.append(f"{counted(len(skipped), 'member')} "
                     + ("was left out, its weights" if len(skipped) == 1
                        else "were left out, their weights") + " missing or "
                     "unreadable when exported (\"skipped\" lists each with its reason); "
                     "the metrics describe the ensemble with them"
                     + (", but for test" if test else ""))
    return {
        "created": time_stamp(),
        # "split": how fit split the data, so that an export moved away from its run is
        # still scored on its own folder's held-out split (evaluate.load_evaluation_task).
        # "files": its files' names (digests), so that evaluate on that folder changed
        # since says how many differ (heldout.changed_files).
        # "spec": the data spec it was read from (none for a Task made in Python), which
        # datachange.metadata_spec reads first: "source" adds "(how)" to it.
        # "splits": each split's examples and fingerprint, so that a split read alone (a tfds
        # split evaluate reads) is known as its own (`evaluate.same_data`).
        "task": {"name": task.name, "source": task.source, "fingerprint": task.fingerprint,
                 "splits": task.split_fingerprints(),
                 **({"spec": task.spec} if task.spec else {}),
                 **({"split": split} if split else {}), **({"files": files} if files else {})},
        # The run that wrote it: another run's export found here is said so (exportfolder).
        "run": run,
        "objective": ensemble.get("objective"),
        "members": [m.info for m in members],
        # The best single candidate on validation (with the ce objective the greedy's first
        # pick, so always a member): robustness evaluation compares the ensemble with it.
        "best_single": ((ensemble.get("val") or {}).get("best_single") or {}).get("trial"),
        "skipped": skipped,
        "retrain_full": bool(retrain_full),
        # The batch of that retraining when it was not each member's recorded one.
        "train_batch_size": None if train_batch_size is None else int(train_batch_size),
        "metrics": {"val": ensemble.get("val"), "test": test or ensemble.get("test"),
                    **({"test_before_retraining": ensemble.get("test")} if test else {}),
                    "source": "RUN/ensemble.json" + (" (test: the exported members)"
                                                     if test else ""), "notes": notes},
        "inputs": {
            SERVING_SIGNATURE: "images: float32 [N, H, W, 3] in [0, 1], any H and W",
            BYTES_SIGNATURE: "image_bytes: string [N], encoded JPEG/PNG/GIF/BMP/WebP",
            MEMBERS_SIGNATURE: "images: as serving_default",
        },
        "outputs": {"probabilities": "float32 [N, C]", "class_ids": "int64 [N]",
                    "class_names": f"string [N] ({BYTES_SIGNATURE} only)",
                    "member_probabilities": f"float32 [N, M, C] ({MEMBERS_SIGNATURE} only)"},
        "versions": versions(),
    }
