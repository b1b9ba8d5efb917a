"""The trained weights of a trial a stop cut after its last step (`keep_trained`), so that
the resumed sweep predicts with them instead of training the trial again
(`take_trained`). The one place that owns RUN/tuner/trained/<trial>.weights.h5 and its
<trial>.json.

Only a stop writes them: a trial whose steps all ran (its divergence guard saw every chunk)
and which was then predicting its validation or test split, or being written, when the
Ctrl-C / SIGTERM came. They restarted from step 0 before (a new user's trial of a real
backbone trained three times after two stops). The JSON is written last and says what the
weights are of (`trained_key`): a resumed trial of other hyperparameters, module files,
data or training rule trains afresh. Both files go once the trial's candidate is written
(`drop_trained`), and with its sweep on ``tune --restart`` (`tune.restart`)."""

from __future__ import annotations

import json
import logging
import os

from hubensemble.errors import held_stops
from hubensemble.fileio import atomic_write_json, read_json

log = logging.getLogger(__name__)

#: The folder under RUN/tuner of the trained weights a stop kept.
FOLDER = "trained"
#: The record fields that say what a trial trains: the trained weights are taken only by
#: a trial whose record has the same, and the same data (`trained_key`'s "task").
KEY_FIELDS = ("trial", "module", "handle", "hparams", "seed", "steps", "profile",
              "eval_size", "train_rule", "module_fingerprint")
#: The record fields of the training itself, kept with the weights and given back to the
#: resumed trial's record (its head's probe and its steps' time, as the run that trained).
TRAINING_FIELDS = ("head_init_seconds", "head_l2", "train_seconds", "train_cpu_seconds")


def trained_paths(run, trial: str) -> tuple[str, str]:
    """(weights file, its JSON) of `trial` (an id) in `run` (a rundir.Run):
    RUN/tuner/trained/<trial>.weights.h5 and RUN/tuner/trained/<trial>.json."""
    folder = os.path.join(os.fspath(run.tuner), FOLDER)
    return (os.path.join(folder, f"{trial}.weights.h5"), os.path.join(folder, f"{trial}.json"))


def trained_key(record: dict, task) -> dict:
    """What trained weights are of: `KEY_FIELDS` of a trial's record (its trial.json as
    `train.run_entry` builds it) and the data's fingerprint (`Task.fingerprint`, sha256)."""
    key = {**{k: record.get(k) for k in KEY_FIELDS}, "task": task.fingerprint}
    return json.loads(json.dumps(key, default=str))  # as read back: tuples are lists


def keep_trained(run, record: dict, task, model) -> str | None:
    """Writes `model`'s weights (a trial's, every step done) and their JSON ({"key":
    `trained_key`, "record": `TRAINING_FIELDS` of `record`}) for the resumed sweep; a second
    stop meanwhile waits for the JSON (`errors.held_stops`), written last: weights without
    it are never taken. Returns the weights file's path, or None when they could not be
    written (the trial then trains again on resume, as before; the reason is logged)."""
    weights, meta = trained_paths(run, record["trial"])
    tmp = f"{weights[:-len('.weights.h5')]}.tmp-{os.getpid()}.weights.h5"
    try:
        with held_stops():
            os.makedirs(os.path.dirname(weights), exist_ok=True)
            if os.path.exists(meta):
                os.remove(meta)
            model.save_weights(tmp)
            os.replace(tmp, weights)
            atomic_write_json(meta, {"key": trained_key(record, task), "record": {
                k: record[k] for k in TRAINING_FIELDS if k in record}})
    except Exception as e:  # noqa: BLE001 - the stop goes on: the trial trains again
        log.info("trial %s: its trained weights could not be kept for the resumed sweep "
                 "(%s: %s); it trains again then", record["trial"], type(e).__name__, e)
        with _quiet():
            os.remove(tmp)
        return None
    return weights


def take_trained(run, record: dict, task, model) -> dict | None:
    """Loads into `model` (built, its module loaded) the weights a stop kept of this very
    trial (`keep_trained`; the same `trained_key`), and returns the training's record
    fields to put in `record` ({} at least); None when there are none, they are of other
    hyperparameters, module files or data (removed: they can never be taken), or their JSON
    cannot be read (the trial trains; its candidate written removes them). Raises
    `TrainedUnreadable` when the weights file does not load (removed)."""
    weights, meta = trained_paths(run, record["trial"])
    if not os.path.exists(meta):
        return None
    try:
        kept = read_json(meta)
        same = isinstance(kept, dict) and kept.get("key") == trained_key(record, task)
    except (OSError, ValueError) as e:
        log.info("trial %s: %s cannot be read (%s); it trains again", record["trial"], meta, e)
        return None
    if not same:
        log.info("trial %s: the trained weights a stop kept are of another trial's settings, "
                 "module or data; it trains again", record["trial"])
        drop_trained(run, record["trial"])
        return None
    try:
        model.load_weights(weights)
    except Exception as e:  # noqa: BLE001 - a damaged file: the trial trains again
        drop_trained(run, record["trial"])
        raise TrainedUnreadable(f"the trained weights a stop kept ({weights}) cannot be "
                                f"loaded ({type(e).__name__}: {e})") from e
    return dict(kept.get("record") or {})


class TrainedUnreadable(Exception):
    """The kept weights did not load (`take_trained`): the model may hold part of them, so
    the trial builds it again and trains (the files are removed)."""


def drop_trained(run, trial: str) -> None:
    """Removes the trained weights a stop kept of `trial` and their JSON (JSON first: weights
    alone are never taken), if any."""
    for path in reversed(trained_paths(run, trial)):
        with _quiet():
            os.remove(path)


def _quiet():
    import contextlib

    return contextlib.suppress(OSError)
