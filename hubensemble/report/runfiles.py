"""What the report reads from a run directory (every part optional), and numbers derived from it."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import numpy as np

from hubensemble import candidate, formats, metrics
from hubensemble import ensemble as ens
from hubensemble.errors import RunError
from hubensemble.fileio import read_json
from hubensemble.report.render import Code, Inline

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunFiles:
    """A run directory as the report sees it. Each part is None (or empty) when the run has
    not made it yet, and its `*_note` (str or `render.Inline`, shown literally) then says
    what is missing and which command makes it.

    `candidates`: the usable candidates (`candidate.load_pool`, probabilities loaded);
    `skipped`: (trial, reason) of candidates left out that did not fail; `failed`: the
    trial.json records of failed trials; `y_val` / `y_test`: int64 [N] labels or None;
    `coverage`: {split: {"classes", "covered", "missing"}} of val / test (ensemble.json's
    record, else computed from the labels and run.json's class names).
    """

    path: Path
    meta: dict
    ranking: object = None          # rank.Ranking
    ranking_note: str | Inline | None = None
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None
    candidates: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)   # (trial, reason), not failures
    failed: list = dataclasses.field(default_factory=list)    # trial.json records, failed
    candidates_note: str | Inline | None = None
    ensemble: dict | None = None
    ensemble_note: str | Inline | None = None
    robustness: dict | None = None
    robustness_note: str | Inline | None = None
    coverage: dict = dataclasses.field(default_factory=dict)
    costs: object = None            # cost.records.RunCosts of RUN/cost.json
    costs_note: str | Inline | None = None
    distill: dict | None = None     # RUN/distill.json, when of the current ensemble
    distill_note: str | Inline | None = None

    def cmd(self, what) -> str:
        """The command line that makes `what` ("rank", "tune", …) for this run."""
        p = str(self.path)
        return {
            "rank": f"hubensemble rank --catalogue FILE --data SPEC --out {p}",
            "tune": f"hubensemble tune --run {p}",
            "ensemble": f"hubensemble ensemble --run {p}",
            "export": f"hubensemble export --run {p}",
            "evaluate": (f"hubensemble evaluate --model {p}/export --data SPEC --corruptions "
                         f"--out {p}/{formats.ROBUSTNESS_FILE}"),
            "fit": f"hubensemble fit --catalogue FILE --data SPEC --out {p}",
            "cost": f"hubensemble cost --run {p}",
            "distill": f"hubensemble distill --run {p}",
        }[what]

    @property
    def task(self) -> dict:
        """run.json's record of the task ({} when there is none)."""
        return ((self.meta.get("data") or {}).get("task")) or {}


def load_run(run_dir) -> RunFiles:
    """Reads everything the report shows from `run_dir`: run.json, ranking.json, the labels,
    the candidates (through `hubensemble.candidate`), ensemble.json and robustness.json.

    Raises RunError when `run_dir` is not a folder or holds neither run.json nor
    ranking.json; a part that is missing or unreadable only leaves a note (and a warning on
    the terminal when the file is there but unreadable: the report alone would hide it).
    """
    from hubensemble.rank import load_ranking
    from hubensemble.rundir import Run

    path = Path(run_dir)
    run = Run(path)
    run.require_started()
    try:
        meta = run.meta()
    except (OSError, ValueError) as e:
        meta = {"_error": f"run.json is unreadable ({e})"}
    files = RunFiles(path=path, meta=meta if isinstance(meta, dict) else {})

    if run.ranking_json.exists():
        try:
            files.ranking = load_ranking(path)
        except RunError as e:
            files.ranking_note = str(e)
            log.warning("the report cannot show the ranking: %s", e)  # not only in report.md
    else:
        files.ranking_note = Inline("There is no ranking yet (ranking.json is missing): run ",
                                    Code(files.cmd("rank")), ".")
    _load_candidates(files, run.candidates)

    if run.ensemble_json.exists():
        try:
            files.ensemble = ens.read_ensemble(path)
        except RunError as e:
            files.ensemble_note = str(e)
            log.warning("the report cannot show the ensemble: %s", e)
    else:
        files.ensemble_note = Inline("There is no ensemble yet (ensemble.json is missing): "
                                     "run ", Code(files.cmd("ensemble")), ".")

    files.coverage = _coverage(files)
    _load_costs(files, run)

    rob = run.robustness_json
    name = formats.ROBUSTNESS_FILE
    if rob.exists():
        try:
            files.robustness = read_json(rob)
            if not isinstance(files.robustness, dict) or "clean" not in files.robustness:
                raise ValueError("not an evaluation written by hubensemble")
        except (OSError, ValueError) as e:
            files.robustness = None
            files.robustness_note = Inline(f"{name} is unreadable ({e}); run ",
                                           Code(files.cmd("evaluate")), " again.")
            log.warning("the report cannot show the robustness evaluation: %s",
                        files.robustness_note)
    else:
        why = ("the run has no test split, so there is nothing to corrupt"
               if files.y_test is None and (files.task.get("sizes") or {}).get("test") is None
               else Inline("run ", Code(files.cmd("evaluate"))))
        files.robustness_note = Inline(f"No robustness evaluation ({name} is missing): ", why,
                                       ".")
    return files


def _load_costs(files: RunFiles, run) -> None:
    """RUN/cost.json (`hubensemble.cost.read_run_costs`) and RUN/distill.json, each optional."""
    from hubensemble.cost import read_run_costs

    try:
        files.costs = read_run_costs(files.path)
    except RunError as e:
        files.costs_note = str(e)
    if files.costs is not None and not files.costs.costs and files.costs_note is None:
        files.costs = None
        files.costs_note = Inline(f"No inference costs yet ({formats.COST_FILE} is missing): "
                                  "run ", Code(files.cmd("cost")), ".")
    if not run.distill_json.exists():
        return
    redo = Inline("run ", Code(files.cmd("distill")), " again")
    try:
        distill = read_json(run.distill_json)
        teacher = list((distill.get("teacher") or {}).get("members") or [])
    except (OSError, ValueError, AttributeError) as e:
        files.distill_note = Inline(f"{run.distill_json} is unreadable ({e}); ", redo, ".")
        log.warning("the report cannot show the distilled student: %s", files.distill_note)
        return
    chosen = [m.get("trial") for m in (files.ensemble or {}).get("members") or []]
    if files.ensemble is not None and set(teacher) != set(chosen):
        # `ensemble` chose again after `distill`: its student, gap and cost ratio describe
        # an ensemble that is gone (a new-user check: "keeps -140 %" beside the new one).
        exported = (files.meta.get("export") or {}).get("members") or []
        if {m.get("trial") for m in exported} != set(chosen):  # distill's teacher: the export
            redo = Inline("run ", Code(files.cmd("export")), ", then ",
                          Code(files.cmd("distill")))
        files.distill_note = Inline(f"{run.distill_json} was distilled from an earlier "
                                    f"ensemble ({len(teacher)} members), not ensemble.json's "
                                    f"({len(chosen)}): ", redo, " to distil this one.")
        return
    files.distill = distill


def _load_candidates(files: RunFiles, folder: Path) -> None:
    """The labels and the candidates, read through `hubensemble.candidate`: the usable pool
    (what the ensemble selects from), the failed trials, and the others left out."""
    found, _ = candidate.scan(folder)
    files.failed = [{**c.record, "trial": c.trial} for c in found if c.status == "failed"]
    try:
        files.y_val = ens.load_labels(files.path, "val")
        files.y_test = ens.load_labels(files.path, "test")
    except RunError as e:
        files.candidates_note = str(e)
    else:
        files.candidates, skipped = candidate.load_pool(
            folder, n_val=None if files.y_val is None else len(files.y_val),
            n_test=None if files.y_test is None else len(files.y_test))
        failed_ids = {r["trial"] for r in files.failed}
        files.skipped = [(t, r) for t, r in skipped if t not in failed_ids]
    if not files.candidates and files.candidates_note is None:
        files.candidates_note = Inline("There are no fine-tuned candidates yet (candidates/ "
                                       "is empty or missing): run ", Code(files.cmd("tune")),
                                       ".")


def _coverage(files: RunFiles) -> dict:
    """Which classes val / test have no example of: ensemble.json's record when it has one,
    else `data.coverage.split_coverage` of the labels with run.json's class names."""
    from hubensemble.data.coverage import split_coverage

    recorded = (files.ensemble or {}).get("coverage")
    if isinstance(recorded, dict) and recorded:
        return recorded
    names = [str(n) for n in files.task.get("class_names") or []]
    if not names:
        return {}
    return {split: split_coverage(names, y)
            for split, y in (("val", files.y_val), ("test", files.y_test)) if y is not None}


def candidate_accuracy(files: RunFiles, cand) -> float | None:
    """A candidate's validation accuracy in [0, 1]: metrics.accuracy of its val_probs against
    RUN/labels/val.npy, or trial.json's record when the labels are missing."""
    if files.y_val is not None:
        return metrics.accuracy(cand.val_probs, files.y_val)
    return (cand.val or {}).get("accuracy")


def candidate_ce(files: RunFiles, cand) -> float | None:
    """A candidate's validation cross-entropy (nats): metrics.nll of its float32 val_probs
    against RUN/labels/val.npy — the number trial.json and ensemble.json record for it — or
    trial.json's record when the labels are missing."""
    if files.y_val is not None:
        return metrics.nll(cand.val_probs, files.y_val)
    return cand.val_ce


def knn_vs_finetuned(files: RunFiles) -> list[tuple[str, float, float]]:
    """(module, kNN score, best validation accuracy of its candidates) for every module that
    was ranked ok and has at least one usable candidate, in ranking order."""
    if files.ranking is None:
        return []
    best = {}
    for c in files.candidates:
        acc = candidate_accuracy(files, c)
        if acc is not None and (c.module not in best or acc > best[c.module]):
            best[c.module] = float(acc)
    return [(r["name"], float(r["score"]), best[r["name"]])
            for r in files.ranking.ok_rows if r["name"] in best]


def spearman(x, y) -> float | None:
    """Spearman's rank correlation in [-1, 1] of two equally long sequences of numbers (ties
    get their average rank): `scipy.stats.spearmanr`. None below 3 pairs or when one side
    is constant (the correlation is then undefined). ValueError for different lengths."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} and {len(y)})")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input; handled above
        rho = float(spearmanr(x, y).statistic)
    return rho if np.isfinite(rho) else None
