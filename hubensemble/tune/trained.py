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
(`drop_trained`), and with its sweep on ``tune --restart`` (`tune.restart`).

The files of a member export retrains or of distill's student, kept as their steps all ran
(`tune.memberkeep`), are written and read here too (`keep_weights`, `take_weights`,
`drop_weights`: RUN/tuner/trained/NAME.weights.h5 and NAME.json, `kept_paths`)."""

from __future__ import annotations

import json
import logging
import os
import warnings

from hubensemble.errors import held_stops
from hubensemble.fileio import atomic_write_json, read_json
from hubensemble.threads import warnings_block

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
    return kept_paths(trained_folder(run), trial)


def trained_folder(run) -> str:
    """RUN/tuner/trained (`FOLDER`) of `run` (a rundir.Run): where a finished training
    is kept, a tune trial's (`keep_trained`) as a member's export or distill trained
    (`memberkeep`)."""
    return os.path.join(os.fspath(run.tuner), FOLDER)


def trained_key(record: dict, task) -> dict:
    """What trained weights are of: `KEY_FIELDS` of a trial's record (its trial.json as
    `train.run_entry` builds it) and the data's fingerprint (`Task.fingerprint`, sha256)."""
    return _as_read({**{k: record.get(k) for k in KEY_FIELDS}, "task": task.fingerprint})


def keep_trained(run, record: dict, task, model) -> str | None:
    """Writes `model`'s weights (a trial's, every step done) and their JSON ({"key":
    `trained_key`, "record": `TRAINING_FIELDS` of `record`}) for the resumed sweep
    (`keep_weights`). Returns the weights file's path, or None when they could not be
    written (the trial then trains again on resume, as before; the reason is logged)."""
    return keep_weights(os.path.dirname(trained_paths(run, record["trial"])[0]),
                        str(record["trial"]), trained_key(record, task), model,
                        {k: record[k] for k in TRAINING_FIELDS if k in record},
                        what=f"trial {record['trial']}")


def take_trained(run, record: dict, task, model) -> dict | None:
    """Loads into `model` (built, its module loaded) the weights a stop kept of this very
    trial (`keep_trained`; the same `trained_key`), and returns the training's record
    fields to put in `record` ({} at least); None when there are none, they are of other
    hyperparameters, module files or data (removed: they can never be taken), or their JSON
    cannot be read (the trial trains; its candidate written removes them). Raises
    `TrainedUnreadable` when the weights file does not load (removed)."""
    return take_weights(os.path.dirname(trained_paths(run, record["trial"])[0]),
                        str(record["trial"]), trained_key(record, task), model,
                        what=f"trial {record['trial']}")


def kept_paths(folder, name: str) -> tuple[str, str]:
    """(weights file, its JSON) of the training kept as `name` in `folder`:
    FOLDER/NAME.weights.h5 and FOLDER/NAME.json (the one spelling of both)."""
    folder = os.fspath(folder)
    return (os.path.join(folder, f"{name}.weights.h5"), os.path.join(folder, f"{name}.json"))


def keep_weights(folder, name: str, key: dict, model, fields: dict | None = None, *,
                 what: str) -> str | None:
    """Writes `model`'s weights (a finished training's) as `name` in `folder`
    (`kept_paths`) and then their JSON ({"key": `key`, "record": `fields`}); a stop
    meanwhile waits for the JSON (`errors.held_stops`), written last: weights without it are
    never taken. `key`: JSON-able, what the weights are of (`trained_key`,
    `memberkeep.member_key`); `what`: the training's name in the log ("trial X"). Returns the
    weights file's path, or None when they could not be written (the reason is logged at
    INFO; that training runs again)."""
    weights, meta = kept_paths(folder, name)
    tmp = f"{weights[:-len('.weights.h5')]}.tmp-{os.getpid()}.weights.h5"
    try:
        with held_stops():
            os.makedirs(os.path.dirname(weights), exist_ok=True)
            if os.path.exists(meta):
                os.remove(meta)
            model.save_weights(tmp)
            os.replace(tmp, weights)
            atomic_write_json(meta, {"key": _as_read(key), "record": dict(fields or {})})
    except Exception as e:  # noqa: BLE001 - the work goes on: that training runs again
        log.info("%s: its trained weights could not be kept for a resumed run (%s: %s); it "
                 "trains again then", what, type(e).__name__, e)
        with _quiet():
            os.remove(tmp)
        return None
    return weights


def take_weights(folder, name: str, key: dict, model, *, what: str) -> dict | None:
    """Loads into `model` (built, its module loaded) the weights kept as `name` in `folder`
    (`keep_weights`) when their JSON's key is `key`, and returns their "record" fields ({}
    at least); None when there are none, they are of another key (removed: they can never be
    taken) or their JSON cannot be read. Raises `TrainedUnreadable` when the weights file
    does not load (removed). `what`: as `keep_weights`'."""
    weights, meta = kept_paths(folder, name)
    if not os.path.exists(meta):
        return None
    try:
        kept = read_json(meta)
        same = isinstance(kept, dict) and kept.get("key") == _as_read(key)
    except (OSError, ValueError) as e:
        log.info("%s: %s cannot be read (%s); it trains again", what, meta, e)
        return None
    if not same:
        log.info("%s: the trained weights a stop kept are of other settings, module files or "
                 "data; it trains again", what)
        drop_weights(folder, name)
        return None
    try:
        with warnings_block():
            # The file holds the optimizer's slots too (Keras saves them once it stepped);
            # the resumed training only predicts, so the fresh model's unbuilt optimizer
            # skipping them is right, and Keras' raw warning of it alarmed a user (479).
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(weights)
    except Exception as e:  # noqa: BLE001 - a damaged file: it trains again
        drop_weights(folder, name)
        raise TrainedUnreadable(f"the trained weights a stop kept ({weights}) cannot be "
                                f"loaded ({type(e).__name__}: {e})") from e
    return dict(kept.get("record") or {})


def _as_read(key: dict) -> dict:
    """`key` as its JSON reads back (tuples are lists; other objects their str)."""
    return json.loads(json.dumps(key, default=str))


class TrainedUnreadable(Exception):
    """The kept weights did not load (`take_trained`): the model may hold part of them, so
    the trial builds it again and trains (the files are removed)."""


def drop_trained(run, trial: str) -> None:
    """Removes the trained weights a stop kept of `trial` and their JSON, if any
    (`drop_weights`)."""
    drop_weights(os.path.dirname(trained_paths(run, trial)[0]), trial)


def drop_weights(folder, name: str) -> None:
    """Removes the training kept as `name` in `folder` (`kept_paths`), JSON first (weights
    alone are never taken), if any."""
    for path in reversed(kept_paths(folder, name)):
        with _quiet():
            os.remove(path)


def _quiet():
    import contextlib

    return contextlib.suppress(OSError)
