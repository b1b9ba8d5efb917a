"""A member's finished training kept for the resumed command (`tune.fit_member`'s `keep`):
export's retraining (`export.retrain`) and distill's student, as a tune trial's is
(`tune.trained`, the one owner of the files: RUN/tuner/trained/NAME.weights.h5 and NAME.json).

A member whose steps all ran is written there at once (`keep_member`): a Ctrl-C / SIGTERM
while it predicts, while export rebuilds or writes the members, or while the next member
trains, lost it before, and the resumed command trained it again (minutes to hours for a
real backbone). The resumed command's `fit_member` loads it when the key is the same
(`member_key`: everything that changes the training) and only predicts (`take_member`);
a stop during the steps loses them, and the stop's line says so (`stepclock.running_loss`:
"(export: member 0 (trial T) retrained on train + val, at step 20/200, restarts from its
start)")."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys

import keras

from hubensemble.stepclock import StepClock, training_kept
from hubensemble.sweepstate import TRAIN_RULE
from hubensemble.terminal import progress_line
from hubensemble.tune.trained import TrainedUnreadable, drop_weights, keep_weights, take_weights

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class KeptMember:
    """Where `fit_member` keeps a member's finished training, and what it is of.

    folder: the folder of kept trainings (`trained.trained_folder(run)`: RUN/tuner/trained);
    name: the member's file name there without suffix ("seeds-0000-m.retrain_full",
    "distill-m.module"): one per member and way of training; what: the member in words for
    the log and a stop's line ("export: member 0 (trial T) retrained on train + val");
    key: the caller's part of the key, what `fit_member` cannot see (JSON-able: distill's
    teacher export and start weights' sha256, export's --train-batch-size), {} by default."""

    folder: str
    name: str
    what: str
    key: dict = dataclasses.field(default_factory=dict)


def member_key(keep: KeptMember, spec, task, hparams, *, profile, splits, head_l2, model,
               strategy) -> dict:
    """Everything that changes a member's training, as its kept JSON holds it: `keep`'s own
    key and name, the module (name, handle, its files' fingerprint as its HubLayer read them:
    `model.backbone.fingerprint`), every hyperparameter (seed, steps, batch and lr included:
    `HParams.to_json`), the profile and evaluation size, the splits trained on (train, or train
    + val for --retrain-full), the LP-FT head's L2 strength, the training rule
    (`sweepstate.TRAIN_RULE`), the replicas of `strategy` and the data (`Task.fingerprint`:
    every split's labels and pixels, sha256)."""
    from hubensemble.tune.inputs import eval_size

    return {**keep.key, "name": keep.name, "module": spec.name, "handle": spec.handle,
            "module_fingerprint": getattr(model.backbone, "fingerprint", None),
            "hparams": hparams.to_json(), "seed": hparams.seed, "profile": profile.name,
            "eval_size": eval_size(task, spec, profile), "splits": list(splits),
            "head_l2": head_l2, "train_rule": TRAIN_RULE,
            "replicas": strategy.num_replicas_in_sync, "task": task.fingerprint}


def take_member(keep: KeptMember, key: dict, model, steps: int, callbacks=()) -> bool:
    """Loads `keep`'s kept training of key `key` into `model` (built and compiled, its module
    loaded: `trained.take_weights`) and says so (`terminal.progress_line`: a command's
    terminal unless -q, and RUN/log.txt; the note of each
    `TrialProgress` among `callbacks`: "…: reusing the training a stop kept"); a stop's line
    then says it only predicts again. False when there is none of this key (one of another
    key is removed). Raises `trained.TrainedUnreadable` (the files removed) when the weights
    do not load: the caller builds the model again and trains."""
    if take_weights(keep.folder, keep.name, key, model, what=keep.what) is None:
        return False
    progress_line(f"{keep.what}: its {steps} steps ran before a stop; predicting with the "
                  "weights kept then, not training again")
    for note in callbacks:  # a TrialProgress by what it does: tune.train imports this module
        if callable(getattr(note, "phase", None)):
            note.phase("reusing the training a stop kept")
    _started(StepClock(steps, what=keep.what)).done_before(steps)
    return True


def keep_member(keep: KeptMember, key: dict, model) -> str | None:
    """Writes `model`'s finished training for a resumed command (`trained.keep_weights`, a
    stop meanwhile waiting) and tells the running clock (`stepclock.training_kept`: a stop's
    line says whether it was kept). Returns the weights file, or None when it could not be
    written (logged; the member trains again then)."""
    path = keep_weights(keep.folder, keep.name, key, model, what=keep.what)
    training_kept(path is not None)
    return path


def drop_member(keep: KeptMember) -> None:
    """Removes `keep`'s kept training, if any (its command wrote what it was for)."""
    drop_weights(keep.folder, keep.name)


class MemberClock(keras.callbacks.Callback):
    """Counts a member's steps on a `stepclock.StepClock` named `keep.what`, the running
    unit a stop's line names ("…, at step 20/200, restarts from its start"). Reads only what
    Keras hands its callbacks; ``async_safe`` as `TrialProgress`."""

    async_safe = True

    def __init__(self, keep: KeptMember):
        super().__init__()
        self.what = keep.what
        self.clock = None

    def on_train_begin(self, logs=None):
        """The member's steps begin: epochs x steps per epoch of them."""
        params = self.params or {}
        self.clock = _started(StepClock(0, what=self.what))
        self.clock.begin((params.get("steps") or 0) * (params.get("epochs") or 1))

    def on_train_batch_end(self, batch, logs=None):
        """A step ended."""
        if self.clock is not None:
            self.clock.step()

    def on_train_end(self, logs=None):
        """The member's training ended."""
        if self.clock is not None:
            self.clock.end()


#: The clock of the member trained (or reused) last in this process (`running`).
_LAST: list = [None]


def _started(clock: StepClock) -> StepClock:
    """`clock`, kept as the member's that runs now (`running` ends it)."""
    _LAST[0] = clock
    return clock


@contextlib.contextmanager
def running():
    """Around a command's members' training and what follows it until they are written:
    as the block is left, the member's clock ends (`StepClock.left_by`, as tune's search
    ends its own), so what a stop lost of it ("…, at step 20/200, restarts from its start",
    or "…, its 200 steps done, keeps its trained weights") is said by that stop's line alone,
    never by a later command's in the same process."""
    from hubensemble.errors import pending_stop

    try:
        yield
    finally:
        clock, _LAST[0] = _LAST[0], None
        if clock is not None:
            stopped = sys.exc_info()[1]
            clock.left_by(stopped if isinstance(stopped, KeyboardInterrupt) else pending_stop())


__all__ = ["KeptMember", "MemberClock", "TrainedUnreadable", "drop_member", "keep_member",
           "member_key", "running", "take_member"]
