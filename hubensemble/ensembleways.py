"""The way on of the candidates the ensemble leaves out: what each skip line says to do
(restore a trial record, delete a folder tune reuses, run the sweep's tune, then the ensemble
again), one rule for the ensemble's lines, cost's and the report's "to redo it" column. Split
out of ensemble.py (at its 700-line limit). No TensorFlow.
"""

from __future__ import annotations

import os

from hubensemble import candidate, fileio, sweepstate
from hubensemble.candidate import TRIAL_FILE, VAL_PROBS_FILE
from hubensemble.formats import CANDIDATES_DIR
from hubensemble.sweepwords import redo_words, redone_by_fit
from hubensemble.text import counted, escaped


def with_way_on(run_dir, skipped, *, then: str = "this ensemble again"
                ) -> list[tuple[str, str]]:
    """`skipped` ((trial, reason)) with the way on added to the reason of each candidate
    folder holding no readable trial record (`sweepstate.without_record`: "trial.json
    unreadable (Unterminated string …)" said no next step): restore the file, or delete the
    folder and run its sweep's tune (`sweepwords.redo_words`: a plain tune runs the default
    sweep), then `then` (ensemble again), as an edited record's hyperparameters say; and of
    each complete ok one whose table has another row or class count, which tune reuses:
    delete its folder first (`candidate.reused_redo`), then `then` too (it named tune's
    command alone, and the user was not told to run this ensemble again)."""
    folder = os.path.join(os.fspath(run_dir), CANDIDATES_DIR)
    out = []
    for t, r in skipped:
        kind = redo_kind(run_dir, t, r)
        # fit's command (in a fit's folder) runs the ensemble too; tune's does not
        after = "" if redone_by_fit(run_dir, t) else f", then {then}"
        if kind and unplanned_folder(run_dir, t):
            # No tune of the run plans it: `tune --sweep S` started a whole sweep the run
            # never planned (the report's rule, `report.failures.redo_step`).
            r = (f"{r}; delete {escaped(os.path.abspath(os.path.join(folder, t)))} (or move "
                 f"it aside: no sweep the run ran plans it), then {then}")
        elif kind == "record":
            r = (f"{r}; restore its {TRIAL_FILE} from a copy, or delete "
                 f"{escaped(os.path.abspath(os.path.join(folder, t)))} and "
                 f"{redo_words(run_dir, t)} (it redoes the trial){after}")
        elif kind == "reused":  # a table's shape: tune reuses the folder
            r += candidate.reused_redo(candidate.read_candidate(folder, t)) + after
        out.append((t, r))
    return out


def unplanned_folder(run_dir, trial, meta=None) -> bool:
    """Whether RUN/candidates/`trial` of run `run_dir` is a folder of a sweep the run's tune
    never ran (its id's sweep, "hyper" of "hyper-0009-beta", is not in run.json "tune" ->
    "sweeps", which records at least one; a trial id of no sweep too): no tune of the run
    redoes it, so its way on is to delete it or move it aside. `meta`: run.json's object
    when the caller holds it (read otherwise; unreadable: False). The one rule of the
    ensemble's skip lines (`with_way_on`) and the report's "to redo it" (`redo_step`)."""
    from hubensemble.formats import RUN_FILE

    if not os.path.isdir(os.path.join(os.fspath(run_dir), CANDIDATES_DIR, str(trial))):
        return False
    if meta is None:
        try:
            meta = fileio.read_json(os.path.join(os.fspath(run_dir), RUN_FILE))
        except (OSError, ValueError):
            return False
    planned = fileio.json_object(fileio.json_object(fileio.json_object(meta).get("tune"))
                                 .get("sweeps"))
    return bool(planned) and str(trial).split("-", 1)[0] not in planned


def redo_kind(run_dir, trial, reason) -> str | None:
    """Which way on an unusable candidate `trial` of run `run_dir`, left out for `reason`
    (`candidate.load_pool`'s), needs beside its reason: "record" when its folder holds no
    readable trial record (`sweepstate.without_record`: restore the file, or delete the
    folder and run its sweep's tune), "reused" when it is a complete ok trial whose
    validation table has another row or class count (tune counts it done and reuses its
    folder: delete it first, `candidate.reused_redo`), None when its reason says its own
    (or tune redoes it as it is: a table changed since tune wrote it, `Candidate.complete`).
    The one rule of the ensemble's skip lines, cost's and the report's "to redo it" column
    (which said nothing of a table of another class count)."""
    folder = os.path.join(os.fspath(run_dir), CANDIDATES_DIR)
    if sweepstate.without_record(folder, trial):
        return "record"
    if str(reason).startswith(VAL_PROBS_FILE):
        cand = candidate.read_candidate(folder, trial)
        if cand is not None and cand.ok and cand.complete:  # a changed table: redone as is
            return "reused"
    return None


def _failed_way_on(run_dir, skipped) -> list[tuple[str, str]]:
    """`skipped` with the way on (`candidate.reused_redo`, then this ensemble again unless
    fit's command redoes the trial: `with_way_on`'s rule) added to the reason of each
    failed trial: "status 'failed': NaN loss" said none, and tune reuses a failed trial."""
    folder = os.path.join(os.fspath(run_dir), CANDIDATES_DIR)
    out = []
    for t, r in skipped:
        cand = candidate.read_candidate(folder, t)
        if cand is not None and cand.status == "failed":
            after = "" if redone_by_fit(run_dir, t) else ", then this ensemble again"
            r += candidate.reused_redo(cand, failed=True) + after
        out.append((t, r))
    return out


def left_out_words(skipped) -> str:
    """"the ensemble left out 2 candidates: T1: REASON; T2: REASON" for `skipped` (ensemble
    .json's [{"trial", "reason"}], each reason with its way on: `with_way_on`,
    `candidate.load_pool`): fit's terminal line for what `hubensemble ensemble` prints as its
    "skipped" lines (`format_ensemble`); inside fit the ensemble said nothing of them."""
    return (f"the ensemble left out {counted(len(skipped), 'candidate')}: "
            + "; ".join(f"{s['trial']}: {s['reason']}" for s in skipped))
