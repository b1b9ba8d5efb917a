"""Keras Tuner glue: the plan's search space, the plan oracle (decide), the tuner (run, record).

Keras Tuner's roles are kept: the oracle decides which trial runs next (`PlanOracle`, from a
precomputed plan, through the public hook `Oracle.populate_space`), the tuner runs it
(`FineTuneTuner.run_trial`), the hypermodel builds the model (`FineTuneHyperModel`).
Where Keras Tuner's public API does not suffice we use a few of its internals; each is
named in docs/tune.md ("Keras Tuner internals") and checked by
tests/test_kerastuner_internals.py, and setup.cfg pins the keras-tuner versions tested.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import socket
import sys
from typing import Mapping, Sequence

import keras
import keras_tuner as kt

from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError, first_line, held_stops, reraise_stop, stop_name
from hubensemble.fileio import (atomic_write_json, machine_error, native_path, read_json,
                                tf_path)
from hubensemble.hyperrule import AugConfig, HParams
from hubensemble.lockwords import option_word
from hubensemble.stepclock import trial_ended
from hubensemble.terminal import bar_note
from hubensemble.rundir import Run
from hubensemble.sweeplock import chief_gone, worker_without_chief
from hubensemble.text import printable, time_stamp
from hubensemble.tune.chiefwatch import ChiefGone, watch_chief
from hubensemble.tune.distributed import chief_address, distributed_role, serve_oracle
from hubensemble.tune.model import build_classifier, compile_classifier
from hubensemble.tune.plans import PlanEntry, as_profile
from hubensemble.tune.train import (OBJECTIVE, TrialProgress, finished_candidate, log_trial_start,
                                    run_entry, trial_label)

log = logging.getLogger(__name__)

_STATUS = kt.engine.trial.TrialStatus
#: The Keras Tuner internals tune uses (here, in tune.distributed and tune.chiefwatch), by
#: import path (keras-tuner >= 1.4.7, < 1.5, pinned in setup.cfg).
#: tests/test_kerastuner_internals.py checks that each exists and behaves as relied on;
#: docs/tune.md says why each is needed.
KERAS_TUNER_INTERNALS = (
    "keras_tuner.engine.oracle.Oracle._get_oracle_fname",  # PlanOracle.save (atomic)
    "keras_tuner.engine.oracle.Oracle._get_trial_dir",  # PlanOracle._save_trial (atomic)
    "keras_tuner.engine.oracle.Oracle._save_trial",  # overridden: KT's writes in place
    "keras_tuner.engine.oracle.Oracle.reload",  # replaced: PlanOracle.reload (KT's glob)
    "keras_tuner.engine.base_tuner.BaseTuner._get_tuner_fname",  # FineTuneTuner.save
    "keras_tuner.src.distribute.oracle_chief.OracleServicer",  # distributed.serve_oracle
    "keras_tuner.src.distribute.oracle_chief.exit_chief",  # distributed.serve_oracle
    "keras_tuner.src.protos.get_service_grpc",  # distributed.serve_oracle
    "keras_tuner.src.distribute.oracle_client.OracleClient",  # its .stub: chiefwatch
)
#: Module flags of Keras Tuner this module sets (not callables, so listed apart from
#: KERAS_TUNER_INTERNALS; tests/test_tune.py checks each exists and is a bool).
KERAS_TUNER_FLAGS = (
    "keras_tuner.src.config.DEBUG",  # quiet_keras_tuner: no traceback print per failed trial
)

# ---------------------------------------------------------------------------------------------
# The search space: exactly the plan's values
# ---------------------------------------------------------------------------------------------

_HP_KEYS = ("plan_index", "module", "lr", "steps", "weight_decay", "dropout", "seed",
            "batch_size", "momentum", "augmentation", "mixup_alpha", "batchnorm", "head_init",
            "clipnorm")


def _aug_text(aug: AugConfig | None) -> str:
    return "none" if aug is None else json.dumps(aug.to_json(), sort_keys=True)


def hp_values(entry: PlanEntry) -> dict:
    """The Keras Tuner hyperparameter values of a plan entry (what TensorBoard shows):
    {"plan_index", "module", "lr", "steps", "weight_decay", "dropout", "seed", "batch_size",
    "momentum", "augmentation" (sorted-key JSON of the AugConfig, or "none"), "mixup_alpha",
    "batchnorm", "head_init", "clipnorm"}. Only fine-tuning entries go through Keras Tuner (a
    probe sweep runs without it: hubensemble.tune.probe)."""
    h = entry.hparams
    return {"plan_index": entry.index, "module": entry.module, "lr": h.lr, "steps": h.steps,
            "weight_decay": h.weight_decay, "dropout": h.dropout, "seed": h.seed,
            "batch_size": h.batch_size, "momentum": h.momentum,
            "augmentation": _aug_text(h.augmentation), "mixup_alpha": h.mixup_alpha,
            "batchnorm": h.batchnorm, "head_init": h.head_init, "clipnorm": h.clipnorm}


def hparams_from_hp(hp) -> HParams:
    """The trial's HParams from its Keras Tuner values (inverse of `hp_values`).

    `hp`: kt.HyperParameters or a mapping of values. Raises HubensembleError for values out
    of HParams' ranges; KeyError / ValueError / TypeError when a value is missing.
    """
    aug = hp.get("augmentation")
    values = hp.values if isinstance(hp, kt.HyperParameters) else hp
    # A sweep's oracle state from before clipnorm existed has no value for it: 0, no clipping.
    clipnorm = float(values.get("clipnorm", 0.0))
    return HParams(lr=float(hp.get("lr")), steps=int(hp.get("steps")),
                   weight_decay=float(hp.get("weight_decay")), dropout=float(hp.get("dropout")),
                   batch_size=int(hp.get("batch_size")), seed=int(hp.get("seed")),
                   augmentation=None if aug == "none" else AugConfig.from_json(aug),
                   mixup_alpha=float(hp.get("mixup_alpha")), momentum=float(hp.get("momentum")),
                   batchnorm=str(hp.get("batchnorm")), head_init=str(hp.get("head_init")),
                   clipnorm=clipnorm)


def plan_entry(plan: Sequence[PlanEntry], values: Mapping) -> PlanEntry | None:
    """The entry of `plan` a trial's hyperparameter values belong to (by "plan_index", and
    only when module and hyperparameters match it too), else None."""
    try:
        entry = plan[int(values.get("plan_index"))]
        same = (values.get("module") == entry.module
                and hparams_from_hp(values) == entry.hparams)
    except (IndexError, KeyError, TypeError, ValueError, HubensembleError):
        return None
    return entry if same else None


def declare_space(hp: kt.HyperParameters, plan: Sequence[PlanEntry]) -> kt.HyperParameters:
    """Declares on `hp` one hyperparameter per key of `hp_values`, whose range is exactly
    the plan's values (so TensorBoard's hparams view has their domains); returns `hp`.

    One value: Fixed; module and augmentation: Choice; steps and batch size: sorted Choice;
    plan index and seed: Int over [min, max]; the rest: Float over [min, max] (log sampling
    when min > 0). The oracle hands out the plan's values; it never samples this space.
    """
    rows = [hp_values(e) for e in plan]
    for key in _HP_KEYS:
        values = list(dict.fromkeys(r[key] for r in rows))
        if len(values) == 1:
            hp.Fixed(key, values[0])
        elif key in ("module", "augmentation", "batchnorm", "head_init"):
            hp.Choice(key, values)
        elif key in ("steps", "batch_size"):
            hp.Choice(key, sorted(values))
        elif key in ("plan_index", "seed"):
            hp.Int(key, min(values), max(values))
        else:
            low, high = min(values), max(values)
            hp.Float(key, low, high, sampling="log" if low > 0 else "linear")
    return hp


class FineTuneHyperModel(kt.HyperModel):
    """Builds and compiles the classifier of a trial from its hyperparameters
    (`build_classifier` + `compile_classifier`; the plan declares the space)."""

    def __init__(self, specs: Mapping[str, ModuleSpec], num_classes: int,
                 plan: Sequence[PlanEntry]):
        super().__init__(name="finetune", tunable=False)
        self.specs = dict(specs)
        self.num_classes = int(num_classes)
        self.plan = list(plan)

    def declare_hyperparameters(self, hp):
        declare_space(hp, self.plan)

    def build(self, hp):
        hparams = hparams_from_hp(hp)
        model = build_classifier(self.specs[hp.get("module")], self.num_classes,
                                 dropout=hparams.dropout, weight_decay=hparams.weight_decay,
                                 batchnorm=hparams.batchnorm)
        return compile_classifier(model, hparams)


# ---------------------------------------------------------------------------------------------
# The oracle: decides which plan entry runs next
# ---------------------------------------------------------------------------------------------

def _not_its_state(path, project, why: str) -> HubensembleError:
    """The refusal of a Keras Tuner state file `path` (oracle.json of sweep folder `project`)
    that parses but is not the state Keras Tuner wrote, or is gone beside its tuner0.json
    (`why`: edited by hand, another file): it raised a KeyError, TypeError or
    FileNotFoundError with Keras Tuner's traceback, or, for `{}`, "trial 'ongoing_trials'
    has no trial.json". The way on is what tune does itself with
    a state file that does not parse (`search.drop_damaged_tuner_state`): Keras Tuner
    afresh, the candidates being the record of what is done."""
    return HubensembleError(
        f"{path} is not Keras Tuner's state of this sweep ({why}; edited or deleted by "
        f"hand?): delete Keras Tuner's state in {project} (its .json files but plan.json, and "
        "its trial_* folders), then run this tune again: Keras Tuner starts afresh, and "
        "trials with a candidate are not run again")


class PlanOracle(kt.Oracle):
    """Hands out a precomputed plan in order; never samples.

    The candidates in RUN/candidates are the record of what is done: an entry whose
    candidate is complete (`train.finished_candidate`: ok with all its files, or failed) is
    skipped, even when Keras Tuner's own state is gone; an entry without one runs, unless it
    is running on another tuner right now. Keras Tuner numbers its trials ("0000", "0001",
    …); the hyperparameter "plan_index" ties each to its plan entry. A trial that was running
    when its process died comes back first (Keras Tuner's reload queues it for retry; one
    from another plan is dropped). An entry is handed out at most once per oracle session,
    so a trial that ends without a candidate cannot loop. `create_trial` returns a STOPPED
    trial when the plan is exhausted or more than `max_failures` (>= 0) planned trials have
    failed (`stopped_for_failures` is then True).
    """

    def __init__(self, plan: Sequence[PlanEntry], candidates_dir, *, max_failures=1000,
                 seed=0):
        self.plan = list(plan)
        super().__init__(objective=kt.Objective(OBJECTIVE, "min"), max_trials=None,
                         hyperparameters=declare_space(kt.HyperParameters(), self.plan),
                         seed=int(seed) + 1, max_consecutive_failed_trials=2 ** 62)
        self.candidates_dir = os.fspath(candidates_dir)
        self.max_failures = int(max_failures)
        self.stopped_for_failures = False
        self._handed: set[int] = set()
        self.verbose = 0  # tune shows its own progress bar

    def failures(self) -> int:
        """How many planned trials have a failed candidate."""
        return sum(1 for e in self.plan
                   if getattr(finished_candidate(self.candidates_dir, e.trial_id), "status",
                              None) == "failed")

    def populate_space(self, trial_id):
        """Keras Tuner's public hook for a new trial: {"status": RUNNING, "values":
        hp_values(entry)} of the first entry that is not done, not running and not handed
        out yet in this session; {"status": STOPPED} when there is none."""
        busy = {e.index for e in (plan_entry(self.plan, t.hyperparameters.values)
                                  for t in self.ongoing_trials.values()) if e is not None}
        for entry in self.plan:
            if entry.index in busy or entry.index in self._handed:
                continue
            if finished_candidate(self.candidates_dir, entry.trial_id) is not None:
                continue
            return {"status": _STATUS.RUNNING, "values": hp_values(entry)}
        return {"status": _STATUS.STOPPED, "values": None}

    @kt.synchronized
    def create_trial(self, tuner_id):
        """Keras Tuner's create_trial (retries first, then `populate_space`), stopping when
        more than max_failures planned trials failed and dropping retries of other plans."""
        if tuner_id not in self.ongoing_trials and self.failures() > self.max_failures:
            self.stopped_for_failures = True
            self.tuner_ids.discard(tuner_id)
            return kt.engine.trial.Trial(self.get_space(), status=_STATUS.STOPPED)
        while True:
            trial = super().create_trial(tuner_id)
            if trial.status != _STATUS.RUNNING:
                return trial
            entry = plan_entry(self.plan, trial.hyperparameters.values)
            if entry is not None:
                self._handed.add(entry.index)
                return trial
            # Queued for retry by Keras Tuner's reload but made by another plan (another
            # budget or seed): not part of this sweep. It stays RUNNING in Keras Tuner's
            # state, which no later session retries.
            self.ongoing_trials.pop(tuner_id, None)

    def get_state(self):
        state = super().get_state()
        # Keras Tuner lists a set of strings: in hash order, another in every process.
        state["tried_so_far"] = sorted(state["tried_so_far"])
        state["plan"] = [e.trial_id for e in self.plan]
        return state

    def reload(self):
        """Keras Tuner's `Oracle.reload` (its trials, then oracle.json; the trials that were
        running are queued for retry), its trials found by listing the project folder.

        Keras Tuner globs ``<project>/trial_*/trial.json``: a run folder whose name holds a
        glob character ('run[1]', 'a*b?') matched no trial (or another folder's: 'run[12]'
        matches 'run1'), and the resume of a killed sweep stopped with Keras Tuner's
        "RuntimeError: Error reloading `Oracle` from existing project". Internals, as Keras
        Tuner 1.4.7's reload: ``Oracle._project_dir``, ``Oracle._retry_queue``.
        """
        project = native_path(self._project_dir)
        for name in sorted(os.listdir(project)):
            path = os.path.join(project, name, "trial.json")
            if name.startswith("trial_") and os.path.isfile(path):
                trial = kt.engine.trial.Trial.from_state(read_json(path))
                self.trials[trial.trial_id] = trial
        path = native_path(self._get_oracle_fname())
        try:  # (one that does not parse: `search.drop_damaged_tuner_state`)
            state = read_json(path)
        except FileNotFoundError as e:  # deleted alone: Keras Tuner's tuner0.json is there
            raise _not_its_state(path, project, "it is gone") from e
        running = state.get("ongoing_trials") if isinstance(state, dict) else None
        try:
            self.set_state(state)
        except KeyError as e:
            if isinstance(running, dict) and e.args and e.args[0] in running.values():
                # a running trial without its trial.json: Keras Tuner's words
                raise RuntimeError("Error reloading `Oracle` from existing project: trial "
                                   f"{e} has no trial.json in {project}") from e
            raise _not_its_state(path, project, f"no {e} in it") from e
        except (TypeError, AttributeError, ValueError) as e:  # a list, a key of another kind
            raise _not_its_state(path, project, first_line(f"{type(e).__name__}: {e}")) from e
        for trial in self.ongoing_trials.values():
            self._retry_queue.append(trial.trial_id)
        self.ongoing_trials = {}

    def set_state(self, state):
        """Keras Tuner's reload, with the space declared again from this plan."""
        super().set_state(state)
        # The saved space is that of the plan at the time; a resumed sweep with a larger
        # budget may bring values outside it (TensorBoard's hparams domains).
        self.hyperparameters = declare_space(kt.HyperParameters(), self.plan)

    # Keras Tuner writes its JSON state in place (open "w", then write): a kill in between
    # leaves a file that stops every later resume. Ours go through temp file + rename.
    # Internals: Oracle._get_oracle_fname, Oracle._save_trial, Oracle._get_trial_dir.
    # Keras Tuner's paths are in TensorFlow's form (tune.search): Python's writes take them
    # back (native_path).
    def save(self):
        """Writes oracle.json through temp file + rename."""
        atomic_write_json(native_path(self._get_oracle_fname()), self.get_state())

    def _save_trial(self, trial):
        atomic_write_json(native_path(os.path.join(self._get_trial_dir(trial.trial_id),
                                                   "trial.json")), trial.get_state())


# ---------------------------------------------------------------------------------------------
# The tuner: runs a plan entry and records it
# ---------------------------------------------------------------------------------------------

class _LinesToLog(io.TextIOBase):
    """A text stream that logs each line written to it at INFO (Keras Tuner's print calls)."""

    def __init__(self):
        super().__init__()
        self._pending = ""

    def writable(self):
        return True

    def write(self, text):
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                log.info("keras-tuner: %s", line.strip())
        return len(text)


@contextlib.contextmanager
def quiet_keras_tuner(capture_prints=False):
    """Keras Tuner's own terminal output off for the block.

    Keras Tuner prints the traceback of every failed trial to stderr (``traceback.print_exc``
    while its module flag ``keras_tuner.src.config.DEBUG`` is True, the default); tune
    reports a failed trial in one line and logs its traceback instead (`run_entry`,
    `FineTuneTuner.run_trial`). With `capture_prints`, what Keras Tuner prints to stdout
    (e.g. "Reloading Tuner from …" on resume) goes to the log at INFO. Both are restored
    after the block. Internal: the flag ``keras_tuner.src.config.DEBUG`` (KERAS_TUNER_FLAGS);
    should a release drop it, the tracebacks come back on the terminal, nothing breaks.
    """
    try:
        from keras_tuner.src import config as kt_config
    except ImportError:
        kt_config = None
    saved = getattr(kt_config, "DEBUG", None)
    if saved is not None:
        kt_config.DEBUG = False
    before = sys.stdout
    try:
        if capture_prints:
            sys.stdout = _LinesToLog()
        yield
    finally:  # whole (errors.held_stops): a second Ctrl-C here left Keras Tuner's DEBUG off,
        with held_stops():  # or sys.stdout going to the log, for the rest of the process
            if capture_prints:
                sys.stdout = before
            if saved is not None:
                kt_config.DEBUG = saved


def tensorboard_hparams(hp: kt.HyperParameters) -> dict:
    """{tensorboard HParam(name, domain): value} of a trial's hyperparameters, for
    TensorBoard's HParams tab (Choice/Fixed/Boolean: Discrete; Int: IntInterval; Float:
    RealInterval)."""
    from tensorboard.plugins.hparams import api as hparams_api

    types = kt.engine.hyperparameters
    out = {}
    for p in hp.space:
        if isinstance(p, types.Choice):
            domain = hparams_api.Discrete(p.values)
        elif isinstance(p, types.Fixed):
            domain = hparams_api.Discrete([p.value])
        elif isinstance(p, types.Boolean):
            domain = hparams_api.Discrete([True, False])
        elif isinstance(p, types.Int):
            domain = hparams_api.IntInterval(p.min_value, p.max_value)
        elif isinstance(p, types.Float):
            domain = hparams_api.RealInterval(float(p.min_value), float(p.max_value))
        else:
            continue
        out[hparams_api.HParam(p.name, domain)] = hp.get(p.name)
    return out


def trial_callbacks(callbacks, trial_id: str, hp: kt.HyperParameters | None = None) -> list:
    """Deep copies of `callbacks` for one trial: each Keras TensorBoard callback writes to
    LOG_DIR/<trial_id>/, with TensorBoard's hparams callback for `hp` added.

    Raises keras_tuner.errors.FatalError (which stops the sweep) for a callback that cannot
    be deep-copied, as Keras Tuner does: callbacks are reused across trials.
    """
    try:
        callbacks = copy.deepcopy(list(callbacks))
    except Exception as e:  # noqa: BLE001 - deepcopy raises whatever the object raises
        raise kt.errors.FatalError(f"every callback of a sweep must be deep-copyable (they "
                                   f"are reused across trials): {type(e).__name__}: {e}")
    extra = []
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.TensorBoard):
            # Read by TensorFlow only (its summary writers): in its form (fileio.tf_path).
            cb.log_dir = tf_path(os.path.join(cb.log_dir, trial_id))
            if hp is not None:
                from tensorboard.plugins.hparams import api as hparams_api

                extra.append(hparams_api.KerasCallback(
                    writer=cb.log_dir, hparams=tensorboard_hparams(hp), trial_id=trial_id))
    return callbacks + extra


class MachineStop(kt.errors.FatalError):
    """A write or read the machine refused during a trial (`fileio.machine_error`: a full
    disk, a file in the way). A FatalError, so Keras Tuner ends the sweep instead of going
    on to the next trial, which would meet the same disk; the search raises `error`, the
    OSError, so the command stops with its one line and the trial runs again on resume."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class PlanMismatch(kt.errors.FatalError):
    """A trial from the chief that this worker's plan does not have (another --seed,
    --budget, --profile, … than the chief's). A FatalError, so Keras Tuner ends the search
    instead of trying the next trial; `run_tune` words it as a RunError naming the options
    that differ (`pool.worker_changes`). `trial_id` is Keras Tuner's number, `values` the
    trial's hyperparameter values (module, plan_index, …) as the chief handed them out."""

    def __init__(self, message: str, trial_id: str, values: Mapping):
        super().__init__(message)
        self.trial_id, self.values = trial_id, dict(values)


def say_failed(bar, trial_id: str, reason, log_path) -> None:
    """One line for a failed trial ("trial T failed: REASON (details in RUN/log.txt)", the
    reason on one line; its traceback is in the log `log_path`): with a progress bar `bar`
    (not -q), in RUN/log.txt and on stderr through the terminal's one renderer
    (`terminal.say`: the bar lifted off and drawn again below, a reason citing docs/X.md
    given its "[read it offline: hubensemble docs X]"), else as a warning (-q hides
    warnings). tune's fine-tunes and probes both say it here: the bar's own write skipped
    that renderer, so a reason that cites a doc had no way to read it offline."""
    from hubensemble.terminal import say

    line = (f"trial {trial_id} failed: {' '.join(str(reason).split())} (details in "
            f"{log_path})")
    if bar is not None:
        say(None, line)  # RUN/log.txt, and stderr below the bar
    else:
        log.warning("%s", line)


class FineTuneTuner(kt.Tuner):
    """Runs a plan entry: fine-tune, predict val/test, write the candidate, report val CE.

    Overrides `run_trial` completely, so Keras Tuner keeps no per-epoch checkpoints
    (keras-tuner #172, #288): the candidate folder is the only result of a trial. Keras
    Tuner's own `hypermodel` stays None (allowed for a tuner that overrides run_trial): given
    one, Keras Tuner builds it at start-up to discover conditional hyperparameters, which
    would load a hub module for nothing; the oracle declares the space from the plan, and
    `run_trial` builds with `builder` (the FineTuneHyperModel passed as `hypermodel`).
    """

    def __init__(self, oracle, hypermodel: FineTuneHyperModel, *, run: Run, task, specs,
                 profile, keep_weights, strategy=None, progress=None, cache_dir=None,
                 **kwargs):
        self.run_dir = run
        self.task = task
        self.specs = dict(specs)
        self.profile = as_profile(profile)
        self.keep_weights = keep_weights
        self.progress = progress
        self.cache_dir = cache_dir
        self.builder = hypermodel
        self.plan = list(hypermodel.plan)
        super().__init__(oracle, None, distribution_strategy=strategy, **kwargs)
        if distributed_role() == "worker":  # Keras Tuner's OracleClient: stop if the chief goes
            self.chief_address = chief_address()[2]
            watch_chief(self.oracle, self._chief_gone)

    def _chief_gone(self) -> HubensembleError | None:
        """The error this worker stops with when its chief has gone (`sweeplock.chief_gone`),
        else None."""
        gone = chief_gone(self.run_dir.path, self.chief_address)
        return None if gone is None else worker_without_chief(
            self.run_dir.path, self.tuner_id, self.project_name, self.chief_address, gone)

    def save(self):
        """Writes the oracle (unless a worker) and <tuner_id>.json, each atomically."""
        # As kt.BaseTuner.save (a worker leaves the oracle to the chief), atomically (see
        # PlanOracle.save). Internal: BaseTuner._get_tuner_fname.
        if distributed_role() != "worker":
            self.oracle.save()
        atomic_write_json(native_path(self._get_tuner_fname()), self.get_state())

    def search(self, *fit_args, **fit_kwargs):
        """Runs trials until the oracle stops (Keras Tuner's loop); on the chief, serves the
        oracle instead (`serve_oracle`) and shows every worker's progress. A worker whose
        chief has gone while it waited for its answer stops with RunError
        (`chiefwatch.watch_chief`), where it waited up to an hour."""
        if distributed_role() == "chief":
            # As Keras Tuner's chief (oracle_chief.start_server), but polling every second
            # (it sleeps 20 s), failing on a port in use, and showing the sweep's progress.
            self.save()
            serve_oracle(self.oracle, on_poll=self._refresh_progress)
            return
        try:
            super().search(*fit_args, **fit_kwargs)
        except ChiefGone as e:  # a worker whose chief has gone: its own error, said once
            raise e.error from None

    def _refresh_progress(self):
        # A chief's bar is polled every second (serve_oracle): refresh() redrew a live bar
        # at each poll whatever its interval; bar_note draws a new count at once and its
        # elapsed time at most once per interval (a line bar: its own), its note kept.
        if self.progress is not None:
            done = sum(1 for e in self.plan
                       if finished_candidate(self.run_dir.candidates, e.trial_id) is not None)
            changed, self.progress.n = done != self.progress.n, done
            bar_note(self.progress, self.progress.postfix or "", at_once=changed)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        trial_ended()  # written or failed: a stop now loses nothing of it (stepclock)
        if self.progress is not None:  # the ended trial's note (TrialProgress) goes with it
            self.progress.set_postfix_str("", refresh=False)
        self._refresh_progress()

    def _log(self, trial, event, detail=""):
        line = "\t".join([time_stamp(), socket.gethostname(),
                          str(os.getpid()), str(self.tuner_id), trial, event,
                          detail.replace("\n", " ")[:300]]) + "\n"
        # One append per line: O_APPEND keeps lines whole across processes.
        fd = os.open(native_path(os.path.join(self.project_dir, "trials.log")),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A failure reason naming a file whose name is not UTF-8 holds lone surrogates:
            # written escaped (text.printable), not raised out of the sweep.
            os.write(fd, printable(line).encode("utf-8"))
        finally:
            os.close(fd)

    def run_trial(self, trial, *args, **kwargs):
        """Trains the plan entry of `trial` (or reports its finished candidate) and returns
        {"val_ce", "val_accuracy"}. Raises keras_tuner.errors.FailedTrialError for a failed
        candidate, PlanMismatch (a FatalError) for a trial that is not this process's plan."""
        entry = plan_entry(self.plan, trial.hyperparameters.values)
        if entry is None:
            raise PlanMismatch(
                f"trial {trial.trial_id} from the oracle does not match this process's plan; "
                "start every tuner with the same run directory, " + option_word(
                    "--sweep, --budget, --seed, --profile and --modules",
                    "sweep, budget, seed, profile and modules (run_tune's keywords)"),
                trial.trial_id, trial.hyperparameters.values)
        done = finished_candidate(self.run_dir.candidates, entry.trial_id)
        if done is not None:  # finished by a process that died before reporting it
            return self._report(done.record)
        reraise_stop()  # a stop whose exception Python ignored: no new trial
        self._log(entry.trial_id, "start")
        log_trial_start(entry, len(self.plan))  # RUN/log.txt: what a killed sweep was running
        try:
            # Inside the try: TensorBoard's hparams writer it makes can meet a full disk or
            # a file in the way (that trial was dropped without a word before).
            callbacks = trial_callbacks(kwargs.get("callbacks", []), entry.trial_id,
                                        trial.hyperparameters)
            tb_dir = next((c.log_dir for c in callbacks
                           if isinstance(c, keras.callbacks.TensorBoard)), None)
            if self.progress is not None:  # the trial's steps on the sweep's bar
                callbacks.append(TrialProgress(self.progress,
                                               trial_label(entry, len(self.plan))))
            record = run_entry(entry, self.specs[entry.module], self.task, self.run_dir,
                               profile=self.profile, strategy=self.distribution_strategy,
                               keep_weights=self.keep_weights, callbacks=callbacks,
                               tensorboard_dir=tb_dir,
                               build=lambda: self.builder.build(trial.hyperparameters),
                               extra={"tuner_id": self.tuner_id}, cache_dir=self.cache_dir)
        except KeyboardInterrupt as e:
            # The line says where the sweep stopped; the trial runs again on resume.
            self._log(entry.trial_id, "interrupted", stop_name(e))
            raise
        except kt.errors.FatalError:
            raise
        except Exception as e:  # e.g. the candidate could not be written: no record
            reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
            log.info("trial %s failed outside its training", entry.trial_id, exc_info=True)
            disk = machine_error(e)
            with contextlib.suppress(OSError):  # trials.log is on that full disk too
                self._log(entry.trial_id, "error", f"{type(e).__name__}: {first_line(e)}")
            if disk is not None:  # every later trial would meet it too: the sweep stops
                if disk.filename is None and "SummaryFileWriter" in str(e):
                    # TensorFlow's "Not a directory [Op:CreateSummaryFileWriter]" names no
                    # path: the trial's TensorBoard folder is where it was writing.
                    disk = OSError(disk.errno, disk.strerror, next(
                        (os.path.join(str(c.log_dir), entry.trial_id)
                         for c in kwargs.get("callbacks", [])
                         if isinstance(c, keras.callbacks.TensorBoard)), None))
                raise MachineStop(disk) from e
            self._say_failed(entry.trial_id, f"{type(e).__name__}: {first_line(e)}")
            raise
        self._log(entry.trial_id, record["status"], record.get("reason") or "")
        if record["status"] != "ok":
            self._say_failed(entry.trial_id, record.get("reason") or "no reason recorded")
        return self._report(record)

    def _say_failed(self, trial_id, reason):
        """`say_failed` of `trial_id` under this sweep's bar (`progress`)."""
        say_failed(self.progress, trial_id, reason, self.run_dir.log)

    @staticmethod
    def _report(record):
        if record["status"] != "ok":
            raise kt.errors.FailedTrialError(record.get("reason") or "failed")
        return {OBJECTIVE: record["val"]["ce"], "val_accuracy": record["val"]["accuracy"]}

    def save_model(self, trial_id, model, step=0):
        pass  # the candidate folder holds the trial's weights

    def load_model(self, trial):
        raise HubensembleError("tune keeps no Keras Tuner checkpoints; rebuild a member with "
                               "build_classifier(...).load_weights(RUN/candidates/<trial>/"
                               "weights.weights.h5)")
