"""The candidate record: the one owner of RUN/candidates/<trial>/ (files, completeness, reading).

A candidate is one fine-tuned model of a sweep (paper 2.3: the pool the ensemble is
selected from). Its folder holds::

    trial.json          the record: trial id, module, handle, hyperparameters, seed, status
                        ("ok" | "failed"), reason, validation/test {"ce", "accuracy"}, …
    val_probs.npy       float32 [N_val, C] class probabilities on the validation split
    test_probs.npy      float32 [N_test, C], when the task has a test split ("has_test")
    weights.weights.h5  the classifier's weights, when the sweep kept them ("weights"; its
                        sha256 in "weights_sha256", a probe's backbone's in
                        "backbone_sha256": `weightsfile.record_digests`)

`write_candidate` builds the folder under a temp name and renames it into place with
trial.json written last, so a reader never sees half a candidate. Everything that reads
candidates (tune's resume, the ensemble, the export, the report) goes through `Candidate`:
one rule for "complete", one reading of the probability tables and one cross-entropy
(`hubensemble.metrics`). This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hubensemble import metrics, weightsfile
from hubensemble.candidatefiles import changed_files, record_written
from hubensemble.errors import HubensembleError, RunError, held_stops
from hubensemble.fileio import (TEMP_MARKER, atomic_save_npy, atomic_write_json,
                                fitted_name, is_temp, read_json, remove_entry, writer_gone,
                                writer_tag)
from hubensemble.lockwords import command_words, run_words
from hubensemble.formats import CANDIDATES_DIR, DISTILL_DIR
from hubensemble.text import absolute, escaped
# The probability tables' reading, split out (the names stay this module's too).
from hubensemble.probtables import (CHECK_ROWS, SUM_TOLERANCE, _table_damage,  # noqa: F401
                                    npy_damage, read_probs)

TRIAL_FILE = "trial.json"
VAL_PROBS_FILE = "val_probs.npy"
TEST_PROBS_FILE = "test_probs.npy"
WEIGHTS_FILE = "weights.weights.h5"
#: A candidate's status: "ok" (it has predictions) or "failed" (it has a reason).
STATUSES = ("ok", "failed")


@dataclasses.dataclass
class Candidate:
    """One candidate folder, read through its trial.json.

    `record` is trial.json as written. `problems` lists why the folder is not complete
    (empty when it is): a file the record names that is missing, a damaged validation
    table, and `changed`: a file that is not the one its writer wrote
    (`candidatefiles.changed_files`; read as before by the stages, which say a changed
    weights file; tune redoes the trial, `complete`). `faults`: `problems` but `changed`. `notes`
    lists what is wrong but harmless to selection (a malformed test table). Probability tables are
    read on demand by `load_probs` and then kept in `val_probs` / `test_probs`
    (float32 [N, C]).
    """

    trial: str
    folder: Path
    record: dict
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    changed: list[str] = dataclasses.field(default_factory=list)
    val_probs: np.ndarray | None = dataclasses.field(default=None, repr=False)
    test_probs: np.ndarray | None = dataclasses.field(default=None, repr=False)

    # --- what the record says --------------------------------------------------------------
    status = property(lambda self: self.record.get("status"))
    reason = property(lambda self: self.record.get("reason"))
    module = property(lambda self: str(self.record.get("module") or ""))
    handle = property(lambda self: str(self.record.get("handle") or ""))
    hparams = property(lambda self: dict(self.record.get("hparams") or {}))
    has_test = property(lambda self: bool(self.record.get("has_test", True)))
    val = property(lambda self: self.record.get("val"))
    test = property(lambda self: self.record.get("test"))

    @property
    def seed(self) -> int:
        """The trial's training seed (0 when the record has none or it is not an integer)."""
        try:
            return int(self.record.get("seed") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def ok(self) -> bool:
        """Status "ok" and every file the record names is there and usable (`faults`)."""
        return self.status == "ok" and not self.faults

    @property
    def faults(self) -> list[str]:
        """`problems` but `changed`: what keeps the candidate from being read at all."""
        return [p for p in self.problems if p not in self.changed]

    @property
    def complete(self) -> bool:
        """The trial has a result that needs no re-run: failed, or ok with all its files as
        its writer wrote them (no `problems`: a file missing, damaged, or `changed` since,
        which tune reused, and fit said with "delete the folder … then fit again"; tune's
        resume rule, `sweepsummary.finished_candidate`, now redoes such a trial). A trial.json
        of an older hubensemble (no WRITTEN record) and a file only touched are no change."""
        return not self.problems

    @property
    def weights_path(self) -> Path | None:
        """The weights file, or None when the sweep did not keep weights (retrain instead)."""
        name = self.record.get("weights")
        return self.folder / name if name else None

    @property
    def val_ce(self) -> float | None:
        """The validation cross-entropy recorded in trial.json (metrics.nll of val_probs)."""
        return (self.val or {}).get("ce")

    def changed_file(self, name: str) -> str | None:
        """`changed`'s text of the file `name` (e.g. VAL_PROBS_FILE: "val_probs.npy is not the
        one tune wrote (…)"), or None when that file is as its writer wrote it."""
        return next((c for c in self.changed if c.startswith(f"{name} ")), None)

    def weights_changed(self) -> str | None:
        """Why its weights file is not the one tune wrote (`weightsfile.changed_since`: its
        sha256 differs from trial.json's "weights_sha256", or it cannot be read), naming the
        file; None when it is, or when the trial keeps no weights or records no digest."""
        return weightsfile.changed_since(self.record, self.weights_path)

    def load_probs(self, *, n_val: int | None = None, n_test: int | None = None) -> str | None:
        """Reads val_probs (and test_probs when the record has them) into this object.

        Returns None when the validation table is usable, else the reason it is not. A test
        table that is malformed leaves `test_probs` None and adds the reason to `notes` (the
        candidate stays usable for selection; it has no test metrics).
        `n_val` / `n_test`: the expected number of rows (the split's labels).
        """
        self.val_probs, why = read_probs(self.folder / VAL_PROBS_FILE, n_val)
        if why:
            return why
        if self.has_test:
            self.test_probs, why = read_probs(self.folder / TEST_PROBS_FILE, n_test)
            if why:
                self.notes.append(why)
        return None

    def read_hparams(self):
        """trial.json's "hparams" as a `hyperrule.HParams`: the one reader of a candidate's
        hyperparameters for the stages that train or build from them (export, export
        --retrain-full, distill) and for the ones that only check them (tune's resume, the
        report's members table: `record_hparams`). RunError when they cannot be read (edited
        or damaged by hand: "lr": "0.01"), naming the trial.json, what is wrong in it and the
        way on (`unreadable_hparams_words`); HParams.from_json's own error named no file."""
        hparams, why = record_hparams(self.record)
        if why is None:
            return hparams
        raise RunError(self.hparams_fault())

    def hparams_fault(self) -> str | None:
        """None when trial.json's "hparams" can be read (`record_hparams`), else the words
        `read_hparams` raises and `load_pool` skips the candidate with: the file, what is
        wrong, and the whole way on: the trial's own sweep (a plain `tune --run RUN` runs
        the default sweep and leaves a probe or seeds trial undone), then ensemble (its
        members are chosen from the pool again) and export, when the run was exported
        (`_after_redo`): "run tune again" alone left the ensemble and export of before."""
        _, why = record_hparams(self.record)
        if why is None:
            return None
        redo = _redo(self.folder.parent, self.trial) + _after_redo(self.folder.parent, self.trial)
        return unreadable_hparams_words(self.folder, why, command=False) + f" ({redo})"

    def summary(self) -> dict:
        """The candidate as ensemble.json and the report list it."""
        return {"trial": self.trial, "module": self.module, "handle": self.handle,
                "hparams": self.hparams, "seed": self.seed, "status": self.status,
                "reason": self.reason, "val": self.val, "test": self.test}


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def record_hparams(record) -> tuple:
    """(HParams, None) of a trial.json `record`'s "hparams", or (None, why they cannot be read:
    'no "hparams" in it', or HParams.from_json's words, e.g. "invalid hyperparameters: lr must
    be a number (got '0.01')"). The one reading behind `Candidate.read_hparams` and tune's
    comparison of a candidate with its planned trial (`tune.pool.trial_differences`)."""
    from hubensemble.hyperrule import HParams

    try:
        hparams = record["hparams"]
    except (KeyError, TypeError):
        return None, 'no "hparams" in it'
    try:
        return HParams.from_json(hparams), None
    except (KeyError, HubensembleError, TypeError, ValueError) as e:
        return None, str(e)


def unreadable_hparams_words(folder, why: str, *, doubt: str = "",
                             command: bool = True) -> str:
    """The words for candidate `folder` whose trial.json hyperparameters cannot be read (`why`,
    from `record_hparams`): the file, why, what that leaves unknown (`doubt`, e.g. tune's ",
    so tune cannot tell whether …") and the way on (restore the file, or delete the folder to
    run the trial again). One text for export, distill, tune and the report. `command`: the
    way on names the command that runs the trial again (`_redo`: its sweep's
    `sweepwords.redo_command`): tune's refusal (`tune.pool.check_candidates`) said "delete
    the folder (X) to run the trial again" and named none, and a plain `tune --run RUN` runs
    the default sweep. False for `Candidate.hparams_fault`, which gives it after these
    words with the ensemble and export that follow."""
    folder = Path(os.fspath(folder))
    again = (f"and {_redo(folder.parent, folder.name)} (it runs the trial again)" if command
             else "to run the trial again")
    shown = escaped(absolute(folder))  # pasteable, from any working folder
    return (f"{shown}{os.sep}{TRIAL_FILE}: its hyperparameters cannot be read ({why}){doubt}; "
            f"restore that file from a copy, or delete the folder ({shown}) {again}")


def natural_key(text: str) -> list:
    """Sort key that orders digit runs as numbers ("trial_9" before "trial_10")."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


def read_candidate(candidates_dir, trial: str) -> Candidate | None:
    """The candidate RUN/candidates/<trial>, or None when it has no readable trial.json.

    The returned candidate may still be incomplete (`problems`): tune re-runs such a trial,
    the ensemble skips it, the export reports it.
    """
    cand, _ = inspect(Path(os.fspath(candidates_dir)) / trial, way_on=False)
    return cand


#: Why a candidate folder without trial.json holds no record (`inspect`).
MISSING_RECORD = (f"its trial record {TRIAL_FILE} is missing (deleted since tune wrote the "
                  "folder, which it writes whole)")


def inspect(folder, *, way_on: bool = True) -> tuple[Candidate | None, str | None]:
    """(candidate, None), or (None, why the folder holds no candidate record). A folder
    without trial.json is no trial in training: `write_candidate` writes a trial in a
    temporary folder, trial.json last, and renames it whole, so its record was deleted (or
    the folder made by hand) since; it said "no trial.json yet (still training, or
    interrupted)" of a finished run's candidate whose trial.json was deleted. With `way_on`,
    that reason ends with the command that redoes the trial ("delete FOLDER and run `hubensemble
    tune --run RUN --sweep S …`": `_redo`, its sweep's with the options run.json records);
    "delete the folder and run its sweep's tune again" named neither. `scan` leaves it to its
    readers, each of which says its own (ensemble's skip line, the report's "to redo it"
    column, "no usable candidates"' closing command), so it is not said twice."""
    folder = Path(os.fspath(folder))
    path = folder / TRIAL_FILE
    try:
        record = read_json(path)
    except FileNotFoundError:
        if not folder.is_dir():
            return None, "no such candidate folder (deleted?)"
        if not way_on:
            return None, MISSING_RECORD
        return None, (f"{MISSING_RECORD}; delete {escaped(absolute(folder))} and "
                      f"{_redo(folder.parent, folder.name)} (it redoes the trial)")
    except (OSError, ValueError) as e:
        return None, f"trial.json unreadable ({e})"
    if not isinstance(record, dict):
        return None, "trial.json is not a JSON object"
    if record.get("status") not in STATUSES:
        return None, (f"trial.json has status {record.get('status')!r}, expected one of "
                      f"{', '.join(STATUSES)}")
    cand = Candidate(trial=str(record.get("trial") or folder.name), folder=folder, record=record)
    if record["status"] == "ok":
        needed = [VAL_PROBS_FILE] + ([TEST_PROBS_FILE] if cand.has_test else [])
        if record.get("weights"):
            needed.append(record["weights"])
        cand.problems = [f"{name} is missing" for name in needed if not (folder / name).exists()]
        # Selection needs the validation table, read whole: damage that kept the file's size
        # (NaN inside) passed a header check. A damaged test table only leaves the candidate
        # without test metrics (`load_pool`).
        damage = _table_damage(folder / VAL_PROBS_FILE)
        cand.problems += [damage] if damage else []
        cand.changed = changed_files(record, folder, _writer(folder), skip={
            name for name in [VAL_PROBS_FILE, *needed] if any(
                p.startswith(f"{name} ") for p in cand.problems)})
        cand.problems += cand.changed
    return cand, None


def _writer(folder) -> str:
    """Which command wrote a candidate `folder`: "distill" for a student (RUN/distill)."""
    return "distill" if Path(folder).parent.name == DISTILL_DIR else "tune"


def is_trial_folder(folder) -> bool:
    """Whether `folder` (a path) is a trial folder a sweep wrote or began to: a folder that
    holds any of a candidate's files (TRIAL_FILE, the probability tables, the weights) or
    nothing. A folder of the user's under a run's candidates/ is not (`Run.foreign_content`:
    `fit --restart` must not delete it); a damaged trial without its trial.json still is."""
    path = Path(os.fspath(folder))
    if not path.is_dir():
        return False
    names = set(os.listdir(path))
    return not names or bool(names & {TRIAL_FILE, VAL_PROBS_FILE, TEST_PROBS_FILE,
                                      WEIGHTS_FILE})


def scan(candidates_dir) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Every candidate record under `candidates_dir` in natural trial order, and the folders
    without one as (name, reason). Temp folders of writes in progress are not listed."""
    root = Path(os.fspath(candidates_dir))
    if not root.is_dir():
        return [], []
    found, without = [], []
    for name in sorted(os.listdir(root), key=natural_key):
        folder = root / name
        if is_temp(name) or not folder.is_dir():
            continue
        cand, why = inspect(folder, way_on=False)  # its readers say the way on
        if cand is None:
            without.append((name, why))
        else:
            found.append(cand)
    return found, without


#: The end of load_pool's reason for a candidate of another class count than the run's task.
ANOTHER_TASK = ": another task's"


def load_pool(candidates_dir, *, n_val: int | None, n_test: int | None = None,
              n_classes: int | None = None, classes_from: str = "the run's task"
              ) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The candidates the ensemble may select from, with probabilities loaded, and the
    skipped ones as (trial, reason), both in natural trial order.

    Usable: status "ok", no `faults` (every file its record names exists; one changed
    since its trial wrote it is read, as the stages say a weights file) and a validation
    table of `n_val` rows of `n_classes` classes (the run's, as run.json records its task;
    `classes_from` says where, in the reason of a candidate that has another count).
    Without `n_classes`, all usable candidates share the class count most of them have
    (first seen on ties). A malformed test table leaves that candidate's `test_probs` None."""
    found, without = scan(candidates_dir)
    skipped = list(without)
    loaded = []
    for cand in found:
        if cand.status != "ok":
            skipped.append((cand.trial, f"status {cand.status!r}: "
                                        f"{cand.reason or 'no reason recorded'}"))
            continue
        # A weights file changed since is read (the selection reads the tables; the ensemble
        # warns of a chosen member's, the export refuses it); a validation table changed
        # since, or a "written" record that cannot say (a hand edit), is not: the ensemble
        # selected on the edited numbers without a word, and tune redoes the trial as it is.
        unsure = [c for c in cand.changed if not c.startswith(
            (f"{TEST_PROBS_FILE} ", f"{cand.record.get('weights') or WEIGHTS_FILE} "))]
        if cand.faults or unsure:
            skipped.append((cand.trial, "; ".join(cand.faults + unsure) + " (" + _redo(
                candidates_dir, cand.trial) + " to redo this trial)"))
            continue
        why = cand.load_probs(n_val=n_val, n_test=n_test)
        if why:
            skipped.append((cand.trial, why))
            continue
        test = cand.changed_file(TEST_PROBS_FILE)
        if test and cand.test_probs is not None:  # no test metrics of numbers not tune's
            cand.test_probs = None
            cand.notes.append(f"{test}; {_redo(candidates_dir, cand.trial)} to redo this trial")
        loaded.append(cand)
    if loaded:
        others = n_classes is None
        if others:
            n_classes = Counter(c.val_probs.shape[1] for c in loaded).most_common(1)[0][0]
        kept = []
        for c in loaded:
            if c.val_probs.shape[1] != n_classes:
                skipped.append((c.trial, f"{VAL_PROBS_FILE} has {c.val_probs.shape[1]} "
                                         f"classes, " + (f"the other candidates {n_classes}"
                                                         if others else f"{classes_from} "
                                                         f"{n_classes}{ANOTHER_TASK}")))
                continue
            if c.test_probs is not None and c.test_probs.shape[1] != n_classes:
                # Said like a malformed test table: no test metrics, named in `notes`.
                c.notes.append(f"{TEST_PROBS_FILE} has {c.test_probs.shape[1]} classes, its "
                               f"{VAL_PROBS_FILE} {n_classes}; no test metrics for it")
                c.test_probs = None
            kept.append(c)
        loaded = kept
    skipped.sort(key=lambda s: natural_key(s[0]))
    return loaded, skipped


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def _temp_name(trial: str) -> str:
    # (fileio.fitted_name: a trial id near 255 bytes, with room for the "-old" of a replace)
    return fitted_name(trial, f"-{writer_tag()}", prefix=TEMP_MARKER, spare=len("-old"))


def stale_temp(name: str) -> bool:
    """Whether a candidate's temp folder `name` (``.tmp-<trial>-<tag>[-old]``, `writer_tag`'s
    "PID_START@HOST"; an older hubensemble's "PID@HOST") is a dead writer's: of this host,
    its pid gone or given to a later process (`fileio.writer_gone`). The host is read after
    the last "@" and the pid after the last "-" before it: a host name with a "-" in it
    (my-box) was read as the pid, and no leftover on such a host was ever removed."""
    head, at, host = name.removesuffix("-old").rpartition("@")
    return bool(at) and writer_gone(f"{head.rpartition('-')[2]}@{host}")


def split_record(probs: np.ndarray, labels) -> dict[str, float]:
    """{"ce", "accuracy"} of a probability table as trial.json records it (float32 table,
    the one saved, so the number equals what every reader computes from the file)."""
    return metrics.val_record(np.asarray(probs, np.float32), labels)


def write_candidate(candidates_dir, record: dict, *, val_probs=None, test_probs=None,
                    save_weights: Callable[[str], None] | None = None) -> Candidate:
    """Writes RUN/candidates/<record["trial"]>/ atomically and returns its Candidate.

    The files go into a temp folder (``.tmp-<trial>-<pid>_<start>@<host>``), trial.json last, then
    one rename puts the folder in place (an older folder of the same trial is replaced).
    `save_weights(path)` writes the weights file there when given (its name is
    record["weights"], default WEIGHTS_FILE). Raises ValueError for a record without
    "trial" or with a status other than "ok"/"failed".
    """
    trial = record.get("trial")
    if not trial:
        raise ValueError("a candidate record needs its 'trial' id")
    if record.get("status") not in STATUSES:
        raise ValueError(f"candidate status must be one of {STATUSES}, got "
                         f"{record.get('status')!r}")
    root = os.fspath(candidates_dir)
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, _temp_name(trial))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    final = os.path.join(root, trial)
    try:
        if val_probs is not None:
            atomic_save_npy(os.path.join(tmp, VAL_PROBS_FILE), np.asarray(val_probs, np.float32))
        if test_probs is not None:
            atomic_save_npy(os.path.join(tmp, TEST_PROBS_FILE),
                            np.asarray(test_probs, np.float32))
        if save_weights is not None:
            record.setdefault("weights", WEIGHTS_FILE)
            written = os.path.join(tmp, record["weights"] or WEIGHTS_FILE)
            save_weights(written)
            # So a file edited or replaced later is noticed where its figures are used.
            weightsfile.record_digests(record, written)
        # So a file changed since is noticed by a fit resuming (each file's size and time).
        record_written(record, tmp, [n for n in os.listdir(tmp) if n != TRIAL_FILE])
        atomic_write_json(os.path.join(tmp, TRIAL_FILE), record)
        if os.path.exists(final):
            old = os.path.join(root, _temp_name(trial) + "-old")
            # Both renames, or the stop waits (`fileio.replace_dir`'s rule): a Ctrl-C right
            # after the first left no candidate, the new one deleted below.
            with held_stops():
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_candidate(root, trial)


def clean_stale_temps(candidates_dir) -> list[str]:
    """Removes temp folders (or files) of candidates whose writer died on this host; returns
    the names it removed.

    Temp folders of live processes, and of other hosts (which may be writing right now on
    shared storage), are left alone; those are removed when their host runs tune again.
    """
    removed = []
    folder = os.fspath(candidates_dir)
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        if not is_temp(name):
            continue
        if not stale_temp(name):
            continue
        if remove_entry(os.path.join(folder, name)):  # what it says is what it did
            removed.append(name)
    return removed


def require_pool(candidates_dir, run_dir, pool: Sequence[Candidate],
                 skipped: Sequence[tuple[str, str]]) -> None:
    """RunError when `pool` (from load_pool) is empty: that `candidates_dir` is missing, or
    why its folders (`skipped`: (trial, reason)) are not usable, each reason once for the
    trials that share it (`_skipped_words`), and the command that writes candidates, once. The
    one wording of "no candidates" for every stage that needs them (ensemble, cost, and the
    command line's check before TensorFlow loads)."""
    if pool:
        return
    from hubensemble.sweepwords import sweep_command

    # The run's own sweep (a plain tune runs the default one: 8 other trials for a probe run).
    folder, tune = absolute(candidates_dir), sweep_command(run_dir)
    if not os.path.isdir(folder):
        raise RunError(f"{escaped(folder)} is missing; {tune} writes the candidates")
    detail = _skipped_words(folder, skipped) or "the folder is empty"
    raise RunError(f"no usable candidates in {escaped(folder)} ({detail}); "
                   f"{_pool_words(folder, run_dir, [t for t, _ in skipped], said=detail)}")


#: How many reasons (kinds) `_skipped_words` names, and how many trials of each.
SHOWN_KINDS, SHOWN_TRIALS = 3, 5


def _skipped_words(folder, skipped) -> str:
    """The reasons of the unusable trials `skipped` ((trial, reason)) in candidate folder
    `folder`, each once, with the trials it holds for (the first SHOWN_TRIALS and "and N
    more"; a trial's own folder said "its folder"), the first SHOWN_KINDS reasons and "and
    N more reasons" for the rest: with every trial.json of an 8-trial run cut, the same tune
    command was said five times in one line, the other three trials unnamed."""
    from hubensemble.text import counted, escaped

    kinds: dict[str, list[str]] = {}
    for trial, reason in skipped:
        own = os.path.abspath(os.path.join(os.fspath(folder), str(trial)))
        for form in (escaped(own), own):
            reason = str(reason).replace(form, "its folder")
        kinds.setdefault(reason, []).append(str(trial))
    parts = []
    for reason, trials in list(kinds.items())[:SHOWN_KINDS]:
        names = ", ".join(trials[:SHOWN_TRIALS])
        if len(trials) > SHOWN_TRIALS:
            names += f" and {len(trials) - SHOWN_TRIALS} more"
        parts.append(f"{names}: {reason}" if len(trials) == 1 else
                     f"{counted(len(trials), 'trial')} ({names}): {reason}")
    if len(kinds) > SHOWN_KINDS:
        rest = sum(len(t) for t in list(kinds.values())[SHOWN_KINDS:])
        parts.append(f"and {counted(len(kinds) - SHOWN_KINDS, 'more reason')} for "
                     f"{counted(rest, 'more trial')}")
    return "; ".join(parts)


def reused_redo(cand: Candidate, *, failed: bool = False) -> str:
    """"; tune reuses a finished trial's folder, so delete FOLDER, then run `hubensemble
    tune …` (it redoes the trial)": the way on of an unusable candidate tune counts as done
    (`complete`: `fit` again kept one of 3 classes of 10, unused, without a word); with
    `failed`, a failed trial's, once its cause is fixed. Said by `load_pool`'s readers
    (the ensemble's skip lines, cost: `ensemble.with_way_on`), not in its reasons. A failed
    trial counts as finished (`complete`), so the same command does not retry it. The
    command that reuses it is the one named after (`_reuser`): "fit" in a fit's folder
    whose fit plans the trial (it said "tune reuses it" there, then named the fit)."""
    who = _reuser(cand.folder.parent, [cand.trial])
    head = (f"running {who} again does not retry a failed trial: to retry it once its "
            f"cause is fixed, delete " if failed else
            f"{who} reuses a finished trial's folder, so delete ")
    return (f"; {head}{escaped(absolute(cand.folder))}, then "
            f"{_redo(cand.folder.parent, cand.trial)} (it redoes the trial)")


def _reuser(candidates_dir, trials) -> str:
    """"fit" when the way on of each of the `trials` (ids) of RUN/candidates
    (`candidates_dir`) is the fit's command (`sweepwords.redone_by_fit`: a fit's folder whose
    fit plans the trial, which fit reuses as tune does), else "tune": the command a way on
    says reuses a finished or failed trial, the one it names after."""
    from hubensemble.sweeps import SWEEPS
    from hubensemble.sweepwords import redone_by_fit

    folder = os.path.abspath(os.fspath(candidates_dir))
    if (not trials or os.path.basename(folder) != CANDIDATES_DIR
            or any(str(t).split("-", 1)[0] not in SWEEPS for t in trials)):
        return "tune"
    run_dir = os.path.dirname(folder)
    return "fit" if all(redone_by_fit(run_dir, t) for t in trials) else "tune"


def _redo(candidates_dir, trial) -> str:
    """"run `hubensemble tune --run RUN --sweep S …`" (`sweepwords.redo_words`) for trial
    `trial` of RUN/candidates (`candidates_dir`), else "run tune again": a plain tune runs the
    default sweep, which leaves a trial of another sweep undone."""
    from hubensemble.sweeps import SWEEPS
    from hubensemble.sweepwords import redo_words

    folder = os.path.abspath(os.fspath(candidates_dir))
    if os.path.basename(folder) == DISTILL_DIR:  # a student: distill writes it
        return "run distill again"
    if (os.path.basename(folder) != CANDIDATES_DIR
            or str(trial).split("-", 1)[0] not in SWEEPS):  # not a trial id tune writes
        return "run tune again"
    return redo_words(os.path.dirname(folder), trial)


def _after_redo(candidates_dir, trial) -> str:
    """", then `hubensemble ensemble --run RUN` and `hubensemble export --run RUN`" (from
    Python, the calls): what follows trial `trial` of RUN/candidates (`candidates_dir`) tuned
    again, as the ensemble and the export (when run.json's "export" records one, `--out`
    named unless it is RUN/export: `Run.export_words`' rule, read here without `Run`, whose
    module imports this one) hold the pool of before; "" for a folder tune does not write (a
    student: distill's) and where the fit's command redoes it (`sweepwords.redone_by_fit`:
    it runs the stages after tune too)."""
    from hubensemble.exportrecord import recorded_export
    from hubensemble.formats import EXPORT_DIR, RUN_FILE
    from hubensemble.sweepwords import ensemble_words, redone_by_fit
    from hubensemble.text import absolute, shell

    folder = os.path.abspath(os.fspath(candidates_dir))
    run = os.path.dirname(folder)
    if os.path.basename(folder) != CANDIDATES_DIR or redone_by_fit(run, trial):
        return ""
    try:  # a copy's: not the original's export outside it
        out = recorded_export(run, read_json(os.path.join(run, RUN_FILE)).get("export"))
    except (OSError, ValueError, AttributeError, TypeError):  # unreadable: ensemble alone
        out = None

    words = f", then {ensemble_words(run)}"  # with its settings: not the defaults'
    if not isinstance(out, str) or not out:
        return words
    given = absolute(out) != absolute(os.path.join(run, EXPORT_DIR))
    return words + " and " + command_words(
        "export", run, flags=f"--out {shell(out)}" if given else "",
        keywords=f"out_dir={absolute(out)!r}" if given else "")


def _pool_words(folder, run_dir, trials, *, said: str = "") -> str:
    """What writes usable candidates when the `trials` (folder names) in `folder` are not:
    the tune command of each of their sweeps with the options run.json records for it (the
    sweep alone when it records none: a plain tune left a probe trial undone)
    (`sweepwords.redo_words`), after removing the folders of the failed ones, which that
    command reuses (`sweeps.rerun_failed_parts`: a failed trial is done; the report's
    next step says so). A plain `tune --run RUN`, said before, reused them and, for a probe
    or seeds run, ran the default sweep instead. A command the words before (`said`: the
    trials' reasons) hold is not said again: "that command"."""
    from hubensemble.sweeps import SWEEPS, rerun_failed_parts
    from hubensemble.sweepwords import redo_budget, redo_words

    # Per sweep, the trial whose redo needs the largest budget (`redo_budget`, None: the
    # recorded one), so that one command plans them all: the first trial's words planned
    # default-0001 and left default-0006 undone after a smaller later call.
    last = {}
    for trial in trials:
        sweep = str(trial).split("-", 1)[0]
        if sweep in SWEEPS:  # its sweep alone when run.json records no options for it
            need = redo_budget(run_dir, trial) or 0
            if sweep not in last or need > last[sweep][0]:
                last[sweep] = (need, trial)
    by_sweep = {sweep: redo_words(run_dir, trial) for sweep, (_, trial) in last.items()}
    found, _ = scan(folder)
    failed = [c.trial for c in found if c.status == "failed"]
    if not by_sweep and not failed:
        return f"{command_words('tune', run_dir)} writes them"
    redo = " and ".join(by_sweep.values()) or run_words("tune", run_dir)
    if by_sweep and all(words in said for words in by_sweep.values()):
        from hubensemble.lockwords import call_verb, option_word

        redo = f"{call_verb()} " + option_word("that tune command", "that run_tune call")
        if len(by_sweep) > 1:
            redo = f"{call_verb()} " + option_word("those tune commands", "those run_tune calls")
    if not failed:
        return f"{redo} to write them"
    _, remove, _ = rerun_failed_parts(folder, failed)
    # The command named reuses them: the fit's in a fit's folder whose fit plans them.
    who = _reuser(folder, [t for _, t in last.values()]) if by_sweep else "tune"
    them, their, folders = (("it", "its", "folder") if len(failed) == 1
                            else ("them", "their", "folders"))
    return (f"{len(failed)} failed, which running {who} again does not retry: to retry {them} "
            f"once {their} cause is fixed, remove {their} {folders} (`{remove}`), then {redo}")
