"""Greedy ensemble selection (Caruana et al., 2004) over the fine-tuned candidates of a run.

`greedy_select` is the method on arrays (validation probabilities [M, N, C] and labels;
`hubensemble.greedy`, re-exported here);
`run_ensemble(run_dir, …)` applies it to RUN/candidates, read only through
`hubensemble.candidate.load_pool`, and writes RUN/ensemble.json. Cross-entropy, accuracy and
ECE are `hubensemble.metrics` (one probability floor, `metrics.PROB_FLOOR`), so a
candidate's CE is the same number in its trial.json, in ensemble.json and in the report.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections import Counter
from collections.abc import Mapping
import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np

from hubensemble import candidate, chance, fileio, options, sweepstate
from hubensemble.candidate import (TEST_PROBS_FILE, TRIAL_FILE, VAL_PROBS_FILE,  # noqa: F401
                                   Candidate)
from hubensemble.candidatefiles import written_digest
from hubensemble.cost import budget as inference_budget
from hubensemble.cost import records as cost_records
from hubensemble.cost import sharing
from hubensemble.cost.records import Limits
from hubensemble.errors import RunError
from hubensemble.formats import CANDIDATES_DIR, ENSEMBLE_FILE, LABELS_DIR
from hubensemble.lockwords import run_words
# The method on arrays (re-exported: the API's greedy_select, the tools and tests import it here).
from hubensemble.greedy import (OBJECTIVES, SIZE_RULES, Selection,  # noqa: F401
                                choose_size, ensemble_probs, example_losses, greedy_select,
                                pick_weights)
# The metrics are hubensemble.metrics' (re-exported: report and evaluate import them here).
from hubensemble.metrics import PROB_FLOOR, accuracy, at_chance, ece, metrics, nll  # noqa: F401
from hubensemble.data.coverage import coverage_note, few_note, split_coverage, unbalanced
# The ensemble's text (re-exported: cli.py and the tests import it here).
from hubensemble.ensemblefile import read_ensemble  # noqa: F401 - the one reader
from hubensemble.ensembletext import (NO_TEST_SPLIT, at_chance_text,  # noqa: F401
                                      chance_sentences, format_ensemble, members_change,
                                      result_line, test_copies_record)
# The way on of the candidates it leaves out (re-exported: cost and the report import it here).
from hubensemble.ensembleways import (_failed_way_on, left_out_words, redo_kind,  # noqa: F401
                                      unplanned_folder, with_way_on)
from hubensemble.rerun import data_part
from hubensemble.rundir import Run
from hubensemble.runwriter import writes_run
from hubensemble.lockwords import (RANK_INPUTS, call_verb, command_words, on_command_line,
                                   option_word)
from hubensemble.sweepwords import redo_words, redone_by_fit, sweep_command
from hubensemble.terminal import showing
from hubensemble.text import absolute, counted, escaped
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)
#: The class notes (`_coverage`: "coverage", "few") that the command running the ensemble
#: stage says in its own output, set by `run_ensemble` while it selects (`notes_said_by`);
#: `_coverage` logs those at INFO (RUN/log.txt), the others as warnings.
_NOTES_SAID = contextvars.ContextVar("hubensemble_ensemble_notes_said", default=frozenset())
#: Older name of `candidate.natural_key` (the report sorts trial folders with it).
_natural_key = candidate.natural_key


# ---------------------------------------------------------------------------------------------
# Candidates in a run directory
# ---------------------------------------------------------------------------------------------

def _label_file(run_dir, split):
    # Absolute: the words that name it follow a command given a relative --run
    return os.path.abspath(os.path.join(os.fspath(run_dir), LABELS_DIR, f"{split}.npy"))


def load_labels(run_dir, split):
    """RUN/labels/<split>.npy as int64 [N], or None when the file does not exist.

    Raises RunError (naming the command that rewrites it) when the file is unreadable or not
    a 1-D integer array.
    """
    path = _label_file(run_dir, split)
    if not os.path.exists(path):
        return None
    rewrite = f"{sweep_command(run_dir)} writes it again from the run's data"
    try:
        y = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({fileio.numpy_load_fault(e)}); {rewrite}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise RunError(f"{path} must hold a 1-D integer array, got {y.dtype} {y.shape}; "
                       f"{rewrite}")
    return y.astype(np.int64)


def load_candidates(run_dir, *, n_val=None, n_test=None
                    ) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The usable candidates of RUN/candidates/ in natural trial order (probabilities
    loaded, float32 [n_val, C] / [n_test, C]), and the skipped ones as [(trial, reason)].

    `candidate.load_pool` with n_val / n_test defaulting to the length of
    RUN/labels/val.npy / test.npy when present: the candidate module's one rule of what is
    complete and usable (status "ok", every file its record names present, a probability
    table of the right shape and of the class count run.json records for the task,
    `run_classes`; without a record, the count most candidates share).
    Temp folders of interrupted writes are ignored silently. The ensemble selects from
    those of them that are `selectable`.
    """
    if n_val is None:
        y = load_labels(run_dir, "val")
        n_val = None if y is None else len(y)
    if n_test is None:
        y = load_labels(run_dir, "test")
        n_test = None if y is None else len(y)
    n_classes, where = run_classes(run_dir)
    return candidate.load_pool(os.path.join(os.fspath(run_dir), CANDIDATES_DIR),
                               n_val=n_val, n_test=n_test, n_classes=n_classes,
                               classes_from=f"the run's task ({where})")


def selectable(cands, skipped) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """(the candidates of `cands` the ensemble may select, `skipped` with the others added
    in natural trial order): a candidate whose trial.json "hparams" cannot be read is left
    out, its reason the file, why and the way on (`Candidate.hparams_fault`), as export and
    distill build members from them: it was selected, and export then refused the ensemble.
    `load_candidates`' pool keeps it (the report names it; distill refuses it in the same
    words). A record without "hparams", or whose "hparams" lack a field HParams requires
    (`_foreign_hparams`: a foreign writer's, as tune writes them all), is left to export's
    refusal, as before."""
    usable, skipped = [], list(skipped)
    for c in cands:
        why = None if _foreign_hparams(c.record) else c.hparams_fault()
        if why:
            skipped.append((c.trial, why))
        else:
            usable.append(c)
    skipped.sort(key=lambda s: candidate.natural_key(s[0]))
    return usable, skipped


def run_classes(run_dir) -> tuple[int | None, str | None]:
    """(the class count run.json records for the run's task: its "num_classes", else the
    number of its class names; the file) or (None, None) when it records neither (a run
    tuned from Python with no task record) or cannot be read. The pool's class count:
    a vote over the candidates let a majority of another task's candidates outvote the
    run's own (`candidate.load_pool`)."""
    run = Run(run_dir)
    try:
        task = run.data_section("task").get("task") or {}
    except RunError:  # run.json unreadable: the vote decides, its own refusals say the rest
        return None, None
    count = task.get("num_classes") if isinstance(task, Mapping) else None
    names = task.get("class_names") if isinstance(task, Mapping) else None
    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 1):
        count = len(names) if isinstance(names, list) and names else None
    return count, (absolute(run.meta_path) if count else None)


def _foreign_hparams(record) -> bool:
    """Whether trial.json `record` has no "hparams", or an object of them without a field
    HParams requires (lr, steps): a record another writer made (tests and tools write
    {"lr": 0.1}), which tune never writes; an object of every required field whose values
    HParams refuses ("lr": "0.01"), or "hparams" that are no object, are edited or damaged."""
    from hubensemble.hyperrule import HParams

    hparams = record.get("hparams", None) if isinstance(record, Mapping) else None
    if hparams is None:
        return True
    required = [f.name for f in dataclasses.fields(HParams)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return isinstance(hparams, Mapping) and any(name not in hparams for name in required)


def _best_single(cands, y, objective):
    nlls = [nll(c.val_probs, y) for c in cands]
    if objective == "ce":
        return int(np.argmin(nlls))
    accs = [accuracy(c.val_probs, y) for c in cands]
    # Accuracy ties are common on 200 examples: break them by cross-entropy, then index.
    return min(range(len(cands)), key=lambda i: (-accs[i], nlls[i], i))


@dataclass
class EnsembleResult(Mapping):
    """What `run_ensemble` returns: the record written to RUN/ensemble.json.

    objective: "ce" | "accuracy"; members: [{"trial", "module", "hparams", "weight" (> 0,
    summing to 1), "handle", "seed", "picks", "path" (relative to the run), "val_sha256"
    (its validation table's sha256 as trial.json records it, None for an older tune's:
    export tells a trial run again since by it)}] in first-pick order; val_curve: [{"size",
    "ce", "accuracy"}] per greedy step on the full validation set; budget, with_replacement,
    bootstrap, seed: the selection's settings; size: picks in the chosen ensemble; picks:
    every step's trial; n_candidates: usable candidates; val:
    {"ensemble": {accuracy, nll, ece}, "best_single": {trial, accuracy, nll, ece}}; skipped:
    [{"trial", "reason"}]; coverage: {split: {"classes", "covered", "missing": [class
    names]}} for "val" and (with test labels) "test" — which classes have no example there,
    so the metrics say nothing about them (`data.coverage.split_coverage`); size_rule:
    `choose_size`'s record; test: like val (best_single may be None; each entry with
    "balanced_accuracy" too when the test classes are unbalanced, `data.coverage.unbalanced`)
    when the test labels and every member's test probabilities exist, else test_missing
    says why; test_curve:
    [{"size", "ce", "accuracy"}] of every prefix of the greedy path on test (for the
    report's figure: not used for any choice), when every picked candidate has test
    probabilities. at_chance: why the ensemble is at chance on validation (`metrics.at_chance`),
    only when it is; unfinished: the sweeps `run_ensemble` found unfinished (`sweepstate`
    texts, "; "-joined), only then; test_copies: with test figures on a test split holding
    copies of train or val images (run.json data.task.duplicates), their counts
    (`ensembletext.test_copies_record`), only then. With inference limits (`--max-gflops`,
    `--max-latency-ms`, `--max-members`): limits: {"max_gflops", "max_latency_ms",
    "max_members", "stopped" (why the greedy path ended early, or None), "not_costed"
    [trials left out: their module could not be costed, or, under a GFLOPs limit, their
    GFLOPs were not counted (their cost's "gflops_not_counted" says why)]}
    and val/test gain "best_single_in_budget" (the best candidate that fits the limits alone, as
    best_single). When RUN/cost.json exists: cost: {"definition", "machine", "candidates":
    {trial: {"gflops", "params", "latency_ms", "size"}}, "ensemble" (`cost.total_cost` of the
    members: "members", "flops", "gflops", "params", "latency_ms"), "best_single" (its summary),
    "path": [{"size", "members", "gflops", "params", "latency_ms"}] the cost of every prefix of
    the greedy path} (ensemble, best single and path only when every candidate they need has a
    cost). Reads like the dict (``result["members"]``); `to_json()` gives exactly what
    ensemble.json holds.
    """

    objective: str
    members: list
    val_curve: list
    budget: int
    with_replacement: bool
    bootstrap: float | None
    seed: int
    size: int
    picks: list
    n_candidates: int
    val: dict
    skipped: list
    coverage: dict = field(default_factory=dict)
    size_rule: dict | None = None
    test: dict | None = None
    test_missing: str | None = None
    test_curve: list | None = None
    limits: dict | None = None
    cost: dict | None = None
    at_chance: str | None = None
    unfinished: str | None = None
    test_copies: dict | None = None

    def __repr__(self) -> str:
        return result_line(self)  # one line; the dataclass repr printed every record

    def to_json(self) -> dict:
        """Exactly what RUN/ensemble.json holds (same keys, same order)."""
        out = asdict(self)
        # ensemble.json holds exactly one of "test" / "test_missing"; test_curve with test.
        for key in ("size_rule", "test", "test_missing", "test_curve", "limits", "cost",
                    "at_chance", "unfinished", "test_copies"):
            if out[key] is None:
                out.pop(key)
        return out

    def __getitem__(self, key):
        return self.to_json()[key]

    def __iter__(self):
        return iter(self.to_json())

    def __len__(self):
        return len(self.to_json())


_ENSEMBLE = options.defaults_for("ensemble")


def _check_options(**values):
    """The options table's rules on the ensemble's keywords (`values`), as the command line
    applies them (with_replacement="no" selected with replacement)."""
    options.check_keywords("ensemble", values)


@writes_run("ensemble")
@with_stage_settings
def run_ensemble(run_dir, *, objective=_ENSEMBLE["objective"], budget=_ENSEMBLE["budget"],
                 with_replacement=_ENSEMBLE["with_replacement"],
                 bootstrap=_ENSEMBLE["bootstrap"], seed=_ENSEMBLE["seed"],
                 size_rule=_ENSEMBLE["size_rule"], max_gflops=_ENSEMBLE["max_gflops"],
                 max_latency_ms=_ENSEMBLE["max_latency_ms"],
                 max_members=_ENSEMBLE["max_members"], export_follows=False) -> EnsembleResult:
    """Selects the ensemble of RUN/candidates (`select_ensemble`) and writes RUN/ensemble.json
    atomically; returns what it wrote. Its log (coverage warnings among them) also goes to
    RUN/log.txt; a class note the caller's output says is logged at INFO there, not warned
    (`notes_said_by`: fit's data summary and closing table, the `ensemble` command's
    `format_ensemble`). Warns when the run's export is now of an earlier ensemble
    (`Run.stale_export`), unless `export_follows` (fit: its export stage comes next). Raises
    as `select_ensemble`;
    TypeError for a `run_dir` that is no folder path (`stageargs.folder`)."""
    from hubensemble import stageargs

    # Before the log file: a refused call writes nothing.
    run_dir = stageargs.folder("run_ensemble", "run_dir", run_dir)
    _check_options(objective=objective, budget=budget, with_replacement=with_replacement,
                   bootstrap=bootstrap, seed=seed, size_rule=size_rule, max_gflops=max_gflops,
                   max_latency_ms=max_latency_ms, max_members=max_members)
    with Run(run_dir).log_file(create=False):
        said = _NOTES_SAID.set(notes_said_by(export_follows, on_command_line(),
                                             showing().progress))
        try:
            result = select_ensemble(run_dir, objective=objective, budget=budget,
                                     with_replacement=with_replacement, bootstrap=bootstrap,
                                     seed=seed, size_rule=size_rule, max_gflops=max_gflops,
                                     max_latency_ms=max_latency_ms, max_members=max_members)
        finally:
            _NOTES_SAID.reset(said)
        unfinished = sweepstate.unfinished_sweeps(run_dir)
        if unfinished:  # an interrupted fit or tune looked finished (a new-user check)
            result.unfinished = "; ".join(s.text() for s in unfinished)
            log.warning("%s", sweepstate.unfinished_warning(run_dir))
        if export_follows and result.skipped:  # fit prints no format_ensemble: say them
            log.warning("%s", left_out_words(result.skipped))
        fileio.atomic_write_json(os.path.join(run_dir, ENSEMBLE_FILE), result.to_json())
        # Its settings in run.json too (`sweepwords.ensemble_options`' fallback): a damaged
        # ensemble.json of a standalone `ensemble --budget 3` was said to be written again
        # by a plain `ensemble --run RUN` (run.json's stage record held only its time).
        Run(run_dir).update(ensemble={"options": {
            "objective": objective, "ensemble_budget": budget,
            "with_replacement": with_replacement, "bootstrap": bootstrap, "seed": seed,
            "size_rule": size_rule, "max_gflops": max_gflops,
            "max_latency_ms": max_latency_ms, "max_members": max_members}})
        stale = None if export_follows else Run(run_dir).stale_export()
        if stale:  # a new-user check: `ensemble --max-members 1` after `export` said nothing
            path, (done, now) = stale
            log.warning("%s holds an earlier ensemble (%s); %s to serve this one",
                        escaped(path), members_change(done, now),
                        f"{call_verb()} {Run(run_dir).export_words(path)}")
        from hubensemble.refresh import refresh_report

        refresh_report(run_dir, "the new ensemble")
    return result


def notes_said_by(in_fit: bool, command_line: bool, shown: bool) -> frozenset:
    """The class notes of the ensemble stage ("coverage": a class with no validation or test
    example, `coverage_note`; "few": a class of fewer than coverage.FEW_EXAMPLES there,
    `few_note`) that the command running it says in its own output, so that each is said
    once per command. `in_fit` (run_ensemble's `export_follows`) with `shown` (its progress
    shown: `terminal.showing`, as fit's data summary is said on stderr, `pipeline._say_data`):
    both, as that summary (`data.taskwords.class_notes`) and fit's closing table
    (`report.summary_table`) say them; fit without (`-q`, which silences warnings too, or
    progress=False from Python, whose only word on stderr the stage's warning is): none. The
    `ensemble` command (`command_line`, not fit) prints `format_ensemble`, whose notes say
    the coverage; a Python caller of `run_ensemble` is told by its warnings alone. A fit
    said each three times on the terminal (issue 13's data: a class missing from test, one
    of 3 images), the `ensemble` command the coverage twice."""
    if in_fit:
        return frozenset({"coverage", "few"}) if shown else frozenset()
    return frozenset({"coverage"}) if command_line else frozenset()


def select_ensemble(run_dir, *, objective=_ENSEMBLE["objective"], budget=_ENSEMBLE["budget"],
                    with_replacement=_ENSEMBLE["with_replacement"],
                    bootstrap=_ENSEMBLE["bootstrap"], seed=_ENSEMBLE["seed"],
                    size_rule=_ENSEMBLE["size_rule"], max_gflops=_ENSEMBLE["max_gflops"],
                    max_latency_ms=_ENSEMBLE["max_latency_ms"],
                    max_members=_ENSEMBLE["max_members"]) -> EnsembleResult:
    """The ensemble of RUN/candidates selected on validation, as an EnsembleResult (no
    ensemble.json written: `run_ensemble` writes it; benchmarks compare selection settings
    with this). One thing is written: when no candidate fits the inference budget, the
    refusal, in run.json "stages" -> "ensemble" -> "refused" (`budgetrefusal.record_refusal`,
    which the report says), before the RunError is raised.

    Reads RUN/labels/val.npy (and test.npy when present) and the usable candidates
    (`load_candidates`, those `selectable`), runs `greedy_select` (Caruana et al., 2004;
    paper 2.3: greedy on validation cross-entropy, ensemble size chosen on validation) and
    returns its
    `EnsembleResult` (see there for the fields); `size_rule` picks the prefix of the greedy
    path (`choose_size`; "paper" is the paper's argmin). best_single is the candidate with
    the best validation objective. A class with no validation or test example is named in
    `coverage` and logged as a warning (at INFO when the command running `run_ensemble` says
    it: `notes_said_by`); an ensemble at chance on validation is warned of
    (`metrics.at_chance`).

    `max_gflops` / `max_latency_ms` / `max_members` set an inference budget (`cost.Limits`;
    greedy_select): the costs come from RUN/cost.json (`hubensemble cost`, TensorFlow-free
    to read). A candidate whose module could not be costed is left out, with a warning.
    Probes of one module, size and frozen weights (`cost.sharing.candidate_key`) count it once.

    Raises RunError naming the missing file and the command that writes it when the
    validation labels (or all of them: an empty file) or every usable candidate are missing,
    when the labels or the class
    names run.json records do not fit the candidates' classes, when a budget needs costs
    that RUN/cost.json does not have (naming `hubensemble cost`), or when no candidate fits
    the budget (naming the candidates left out, which no selection's lines then name);
    OptionError for a value the command line refuses (`options.check_keywords`).
    """
    _check_options(objective=objective, budget=budget, with_replacement=with_replacement,
                   bootstrap=bootstrap, seed=seed, size_rule=size_rule, max_gflops=max_gflops,
                   max_latency_ms=max_latency_ms, max_members=max_members)
    run_dir = os.fspath(run_dir)
    y_val = load_labels(run_dir, "val")
    if y_val is None:
        Run(run_dir).require_started()  # an empty or mistyped folder: say so, not "run tune"
        raise RunError(f"{_label_file(run_dir, 'val')} is missing; {sweep_command(run_dir)} "
                       "writes it (with the candidates), or "
                       f"{command_words('rank', run_dir, **RANK_INPUTS)} when the run starts here")
    if not len(y_val):  # numpy's "zero-size array to reduction operation minimum" before
        raise RunError(f"{_label_file(run_dir, 'val')} holds no labels, and the ensemble is "
                       f"chosen on the validation images; {sweep_command(run_dir)} writes it "
                       "again from the run's data")
    y_test = load_labels(run_dir, "test")
    cands, skipped = selectable(*load_candidates(
        run_dir, n_val=len(y_val), n_test=None if y_test is None else len(y_test)))
    skipped = with_way_on(run_dir, skipped)
    other_task = [t for t, r in skipped if r.split("; ")[0].endswith(candidate.ANOTHER_TASK)]
    if not cands and other_task:  # each of another class count than the run's task
        n_classes, where = run_classes(run_dir)
        raise RunError(f"the candidates in {os.path.join(run_dir, CANDIDATES_DIR)} predict "
                       f"another number of classes (e.g. {other_task[0]}: "
                       f"{dict(skipped)[other_task[0]].split(',')[0]}) than the run's task, "
                       f"{n_classes} ({where}); they come from another task: move them out "
                       f"and {call_verb()} {sweep_command(run_dir)} again")
    candidate.require_pool(os.path.join(run_dir, CANDIDATES_DIR), run_dir, cands, skipped)
    skipped = _failed_way_on(run_dir, skipped)
    n_classes = cands[0].val_probs.shape[1]
    if y_val.min() < 0 or y_val.max() >= n_classes:
        raise RunError(f"validation labels span [{y_val.min()}, {y_val.max()}] but the "
                       f"candidates predict {n_classes} classes; the labels and candidates "
                       f"come from different tasks: {call_verb()} {sweep_command(run_dir)} again")
    names = Run(run_dir).class_names()
    if names is not None and len(names) != n_classes:  # the coverage fell back to numbers
        raise RunError(f"the candidates in {os.path.join(run_dir, CANDIDATES_DIR)} predict "
                       f"{n_classes} classes (e.g. {cands[0].trial}) but the run's task has "
                       f"{len(names)} ({Run(run_dir).meta_path}); they come from another "
                       f"task: move them out and {call_verb()} {sweep_command(run_dir)} again")
    coverage = _coverage(run_dir, n_classes, {"val": y_val, "test": y_test})
    limits = Limits(gflops=max_gflops, latency_ms=max_latency_ms, members=max_members)
    recorded = cost_records.read_run_costs(run_dir)
    costs = recorded.costs
    # Probes of one module share its frozen backbone in the export: counted once (sharing).
    from hubensemble.runspecs import checked_entries  # a hand edit refused in its words
    specs = checked_entries(Run(run_dir), {c.module for c in cands})
    keys = [sharing.candidate_key(c, specs, costs.get(c.trial)) for c in cands]
    table, not_costed = inference_budget.cost_table(run_dir, cands, recorded, limits, keys)
    val = _stacked_val(cands)
    try:
        sel = greedy_select(val, y_val, objective=objective, budget=budget,
                            with_replacement=with_replacement, bootstrap=bootstrap, seed=seed,
                            size_rule=size_rule, costs=table, limits=limits)
    except ValueError as e:
        if not limits.active or "inference budget" not in str(e):
            raise
        why = inference_budget.cheapest(cands, costs, limits)
        from hubensemble.budgetrefusal import record_refusal  # the report says it: an
        record_refusal(run_dir, limits, why)  # earlier ensemble.json stays, as the run's
        # No cost at all: raising a limit cannot help; cost says each module's reason. No
        # GFLOPs counted: nor can it; their measured latency can take a latency limit.
        least = inference_budget.least_raise(cands, costs, limits)
        way = (f"{run_words('cost', run_dir)} (it names why each module has none), or drop "
               "the limit" if why == inference_budget.NO_COST else
               inference_budget.not_counted_way(cands, costs, limits, run_words('cost', run_dir))
               if why.startswith(inference_budget.NOT_COUNTED) else
               inference_budget.raise_words(least[1], f"{least[0]}'s, the least that admits "
                                            "a candidate") if least is not None else
               option_word("drop the limit flags", "leave the limits out"))
        # The candidates it could not use, said by no one else: fit's "left out" warning
        # and the ensemble command's "skipped" lines follow a selection, and there is none.
        besides = (f". Besides, {counted(len(skipped), 'candidate')} cannot enter any "
                   "ensemble: " + "; ".join(f"{t}: {r}" for t, r in skipped)) if skipped else ""
        raise RunError(f"no candidate fits the inference budget ({limits.flags()}): "
                       f"{why}; {way}{besides}") from None
    picks = Counter(sel.indices[:sel.size])
    members = [{"trial": cands[i].trial, "module": cands[i].module,
                "hparams": cands[i].hparams, "weight": w, "handle": cands[i].handle,
                "seed": cands[i].seed, "picks": picks[i],
                "path": os.path.relpath(cands[i].folder, run_dir),
                # the table it was chosen by: a trial run again since is another (export)
                "val_sha256": written_digest(cands[i].record, VAL_PROBS_FILE)}
               for i, w in sel.weights.items()]
    for member, i in zip(members, sel.weights):
        changed = cands[i].weights_changed()
        if changed:  # its probabilities, chosen on, are of the weights tune wrote
            member["weights_changed"] = changed
            # tune redoes a trial whose file changed since it wrote it as it is; one of a
            # version before trial.json recorded its files needs its folder deleted first.
            first = ("" if not cands[i].complete else
                     f"delete {escaped(os.path.abspath(cands[i].folder))} and ")
            # Export refuses such a member (`exportplan.plan_members`): said here, where the
            # ensemble is chosen, not first at the export.
            after = ("" if redone_by_fit(run_dir, cands[i].trial) else
                     ", then this ensemble again")
            log.warning("member %s: %s; its recorded probabilities and metrics (this "
                        "ensemble's) are of the weights tune wrote, not these, and export "
                        "refuses it: restore the file, or %s%s again (it redoes the trial)%s",
                        cands[i].trial, changed, first, redo_words(run_dir, cands[i].trial),
                        after)
    unbuildable = _without_hparams([cands[i] for i in sel.weights])
    if unbuildable:  # chosen, and export then refused the ensemble: say it at once
        log.warning("%s", unbuildable)
    best = _best_single(cands, y_val, objective)
    val_probs = ensemble_probs(val, sel.weights)
    result = EnsembleResult(
        objective=objective, members=members, val_curve=sel.curve, budget=int(budget),
        with_replacement=bool(with_replacement), bootstrap=bootstrap, seed=int(seed),
        size=sel.size, picks=[cands[i].trial for i in sel.indices], n_candidates=len(cands),
        val={"ensemble": metrics(val_probs, y_val),
             "best_single": {"trial": cands[best].trial,
                             **metrics(cands[best].val_probs, y_val)}},
        skipped=[{"trial": t, "reason": r} for t, r in skipped], coverage=coverage,
        size_rule=sel.size_rule)
    why = at_chance(val_probs, y_val, n_classes)
    if why:  # e.g. `--profile quick`, which fails no trial at chance: say it, not just ln C
        result.at_chance = why
    # A member at chance (--profile quick keeps them), the ensemble or not; one sentence for
    # an ensemble of one member at chance (its figures are the ensemble's).
    weak = chance.at_chance_candidates([cands[i] for i in sel.weights], y_val)
    for text in chance_sentences(why, weak, {c.trial: c.record for c in cands},
                                 [cands[i].trial for i in sel.weights]):
        if text:
            log.warning("%s", text)
    in_budget = None
    if limits.active:
        result.limits = {**limits.to_json(), "stopped": sel.stopped, "not_costed": not_costed}
        alone = inference_budget.fits_alone(len(cands), table, limits)
        if alone:
            in_budget = alone[_best_single([cands[i] for i in alone], y_val, objective)]
            result.val["best_single_in_budget"] = {"trial": cands[in_budget].trial,
                                                   **metrics(cands[in_budget].val_probs, y_val)}
    if costs:
        result.cost = inference_budget.cost_record(
            cands, recorded, [cands[i].trial for i in sel.weights],
            [cands[i].trial for i in sel.indices], cands[best].trial,
            keys={c.trial: k for c, k in zip(cands, keys)})
    if y_test is not None and all(cands[i].test_probs is not None for i in set(sel.indices)):
        result.test_curve = _test_curve([cands[i].test_probs for i in sel.indices], y_test)
    have_test = y_test is not None and all(cands[i].test_probs is not None for i in sel.weights)
    if have_test:
        ens = ensemble_probs({i: cands[i].test_probs for i in sel.weights}, sel.weights)
        single = cands[best].test_probs
        result.test = {
            "ensemble": _test_metrics(ens, y_test),
            "best_single": None if single is None else {"trial": cands[best].trial,
                                                        **_test_metrics(single, y_test)},
        }
        # Test images that are copies of train or val ones: the figures are no held-out
        # measure, said beside them (`format_ensemble`, from this record).
        result.test_copies = test_copies_record(
            data_part(Run(run_dir).meta(), "task").get("duplicates"), len(y_test))
        if in_budget is not None and cands[in_budget].test_probs is not None:
            result.test["best_single_in_budget"] = {
                "trial": cands[in_budget].trial,
                **_test_metrics(cands[in_budget].test_probs, y_test)}
    else:
        lacking = [cands[i] for i in sel.weights if cands[i].test_probs is None]
        result.test_missing = (_no_test_labels(run_dir) if y_test is None else
                               "no test probabilities for member " + "; ".join(
                                   f"{c.trial} ({'; '.join(c.notes) or 'none written'})"
                                   for c in lacking))
    return result


def _without_hparams(members) -> str | None:
    """One line naming the `members` (Candidates) whose trial.json holds no "hparams" (a
    hand-edited or half-written record), each with its file and the command that redoes it
    (`Candidate.hparams_fault`: its sweep's `sweepwords.redo_words`), as export and distill
    build members from them and refuse this ensemble; None when every member has them.
    `selectable` leaves such records in the pool (tests and tools write records of their
    own without "hparams"), so the ensemble says it where it chooses them."""
    faults = [f"{c.trial}: {c.hparams_fault()}" for c in members
              if not isinstance(c.record, Mapping) or c.record.get("hparams") is None]
    if not faults:
        return None
    return (f"export will refuse this ensemble: {len(faults)} of its members hold"
            f"{'s' if len(faults) == 1 else ''} no hyperparameters, so it cannot be built "
            "again; " + "; ".join(faults))


def _stacked_val(cands) -> np.ndarray:
    """The validation tables of `cands` as one float32 [M, N, C] array (greedy_select's
    input), each candidate's `val_probs` then a view of its row: the tables are mapped from
    their files (`candidate.read_probs`), and a mapping kept beside the stack held a second
    copy of the pool's pages in memory. Filled one table at a time (np.stack's copy is the
    same, after every table was read)."""
    first = cands[0].val_probs
    val = np.empty((len(cands),) + first.shape, np.float32)
    for i, c in enumerate(cands):
        val[i] = c.val_probs
        c.val_probs = val[i]  # the mapping is let go here
    return val


def _test_metrics(probs, y_test) -> dict:
    """`metrics` of test probabilities [N, C], with "balanced_accuracy" when the test classes
    are unbalanced (`data.coverage.unbalanced`), as the report and the closing table give it
    then: they computed it from the candidates' test_probs.npy, which ensemble.json did not
    record."""
    return metrics(probs, y_test, balanced=unbalanced(y_test))


def _no_test_labels(run_dir) -> str:
    """Why a run has no test metrics when RUN/labels/test.npy is absent, in the user's terms:
    its data has no test split (NO_TEST_SPLIT, stored neutral: ensembletext.test_missing_text
    adds how to give one when shown) when run.json's data record says so
    (`Task.files_record` sizes); else the file is missing. It said "no RUN/labels/test.npy"
    of an npz without x_test (a new-user check)."""
    try:
        task = Run(run_dir).data_section("task").get("task") or {}
    except RunError:  # run.json unreadable: the file is what is known to be missing
        task = {}
    sizes = task.get("sizes") if isinstance(task, dict) else None
    if isinstance(sizes, dict) and "test" in sizes and not sizes["test"]:
        return NO_TEST_SPLIT  # neutral: worded when shown (ensembletext.test_missing_text)
    return f"no {_label_file(run_dir, 'test')}"


def _test_curve(path_probs, y_test) -> list[dict]:
    """{"size", "ce", "accuracy"} on test of every prefix of the greedy path (equal weight per
    pick, as the selection averages), for the report's figure only."""
    total = np.zeros(np.shape(path_probs[0]), np.float64)
    curve = []
    for j, probs in enumerate(path_probs, 1):
        total += probs
        current = total / j
        curve.append({"size": j, "ce": nll(current, y_test),
                      "accuracy": accuracy(current, y_test)})
    return curve


def _coverage(run_dir, n_classes, labels):
    """{split: split_coverage} of the splits with labels, with run.json's class names (or the
    class numbers 0..n_classes-1 when it records none); each gap, and each class of fewer than
    coverage.FEW_EXAMPLES examples there (`few_note`), is logged as a warning, or at INFO
    when the running command says it in its own output (`_NOTES_SAID`, `notes_said_by`)."""
    names = Run(run_dir).class_names()
    if names is None or len(names) != n_classes:
        names = [str(i) for i in range(n_classes)]
    coverage = {split: split_coverage(names, y) for split, y in labels.items()
                if y is not None}
    said = _NOTES_SAID.get()
    for split in coverage:
        for kind, note in (("coverage", coverage_note(coverage, split)),
                           ("few", few_note(names, labels[split], split))):
            if note:
                log.log(logging.INFO if kind in said else logging.WARNING, "%s (%s)", note,
                        escaped(run_dir))
    return coverage
