"""The export stage: ensemble.json + its candidates -> members rebuilt or retrained -> export."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time

import numpy as np

from hubensemble import candidate, fileio, options
from hubensemble.cost.records import LATENCY_BATCHES  # timed as `cost` times the candidates
from hubensemble.errors import HubensembleError, RunError, first_line, reraise_stop
from hubensemble.export.layers import normalise_weights
from hubensemble.export.memberplan import _build_member, _export_member
from hubensemble.export.memberplan import seeded_python_random  # noqa: F401 - docs name it here
from hubensemble.export.metadata import data_files_record, export_metadata, split_record
from hubensemble.export.retrain import retrain_member, test_after_retraining
from hubensemble.export.saved import save_export
from hubensemble.export.shared import backbone_groups
from hubensemble.exportfolder import (KEPT_EXPORT, keep_replaced_export,  # noqa: F401 - were
                                      kept_export_folder)  # here: re-exported
from hubensemble.exportfolder import folder_lock, other_run, run_record
from hubensemble.exportplan import _or_skip, _skip_words, plan_members
from hubensemble.formats import (COST_FILE, SERVING_SIGNATURE, STUDENT_EXPORT_DIR,
                                 check_export_target, read_export_metadata)
from hubensemble.preflight import check_export_flags
from hubensemble.runspecs import catalogue_entries, module_spec
from hubensemble.runwriter import writes_run
from hubensemble.sweepwords import ensemble_words
from hubensemble.terminal import progress_bar, shows_progress
from hubensemble.lockwords import option_word
from hubensemble.text import absolute, counted as counted_words, escaped, time_stamp
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)

#: Validation images the reload check compares on.
CHECK_BATCH = 32


@dataclasses.dataclass
class ExportResult:
    """What `export_ensemble` wrote (also recorded in run.json under "export").

    `path`: the export folder (absolute). `members`: per exported member the metadata
    asset's entry (trial, module, handle, weight normalised to sum 1 over the members,
    hparams, seed, eval_size, input_size, value_range, source). `skipped`: members left out
    by `skip_missing`, as {"trial", "module", "reason"}. `max_abs_diff`: the reload check's
    largest probability difference, in [0, RELOAD_TOLERANCE]. `class_names`: the C output
    classes in order. `retrain_full`: whether members were retrained on train + val.
    `test`: with `retrain_full` and a test split, ensemble.json's "test" record measured
    again on the exported (retrained) members (`retrain.test_after_retraining`), else None.
    `seconds`: wall time of the stage. `cost`: the metadata asset's cost record (members'
    and ensemble's FLOPs, parameters, latency; None when no member could be costed).
    `tflite`: the TFLite model's record (`export.tflite.TFLiteResult.to_json`) with
    ``--format tflite``, else None. `latency_ms`: {batch: median ms} of the exported
    SavedModel's serving_default, measured after the reload check (machine-dependent).
    `student`: with `export_ensemble(student=...)` the metadata's "student" record (module,
    trial, folder, teacher), else None.
    """

    path: str
    members: list
    skipped: list
    max_abs_diff: float
    class_names: list
    retrain_full: bool
    seconds: float
    cost: dict | None = None
    tflite: dict | None = None
    latency_ms: dict | None = None
    test: dict | None = None
    student: dict | None = None

    def to_json(self) -> dict:
        """The record as a JSON-able dict (what run.json's "export" section holds)."""
        return dataclasses.asdict(self)

    def format_test(self) -> str | None:
        """`test` in words for the terminal (None without it): the ensemble's and the best
        single member's accuracy and NLL, labelled as measured on the retrained members, then
        the figures before retraining (the export metadata's test_before_retraining,
        ensemble.json's). A standalone `export --retrain-full` printed only "exported 3
        member(s)…", never the figures it measured (a new-user check). The option is named
        as the caller sets it: --retrain-full on the command line, retrain_full=True from
        Python (`lockwords.option_word`)."""
        if not self.test:
            return None
        before = (read_export_metadata(self.path).get("metrics") or {}).get(
            "test_before_retraining") or {}

        def figures(record):
            return f"accuracy {record['accuracy']:.4f}, NLL {record['nll']:.4f}"

        how = option_word("--retrain-full", "retrain_full=True")  # as the caller set it
        lines = ["test, measured on the exported members retrained on train + val "
                 f"({how}): ensemble {figures(self.test['ensemble'])}"]
        best = self.test.get("best_single")
        if best:
            lines.append(f"  best single ({best['trial']}) {figures(best)}")
        elif "best_single" in self.test:
            lines.append("  best single: no member of the ensemble, so not retrained")
        if before.get("ensemble"):
            was = before.get("best_single")
            lines.append("  before retraining (RUN/ensemble.json): ensemble "
                         f"{figures(before['ensemble'])}"
                         + (f"; best single {figures(was)}" if was else ""))
        return "\n".join(lines)


_EXPORT = options.defaults_for("export")


def check_train_batch(train_batch_size, *, retrain_full: bool) -> None:
    """OptionError for export's `train_batch_size` (--train-batch-size) without
    `retrain_full` (--retrain-full), in the caller's words (`lockwords.option_word`): it sets
    the batch of that retraining only; a member whose weights were not kept is retrained as
    its trial was, at its recorded batch, so that it is the member the ensemble chose."""
    if train_batch_size is not None and not retrain_full:
        raise options.OptionError(
            f"{option_word('--train-batch-size', 'train_batch_size')} applies only to the "
            f"retraining of {option_word('--retrain-full', 'retrain_full=True')}; add it, or "
            "leave the batch out (a member whose weights were not kept is retrained at its "
            "recorded batch, as its trial was)")


def _other_batch(train_batch_size, plans) -> int | None:
    """`train_batch_size` when it retrained some member of `plans` at another batch than its
    candidate's record, else None (the metadata's "train_batch_size": fit, which hands its
    tune's batch on, retrains at each member's own, so its export is adopted as fit's)."""
    recorded = {(p.record.get("hparams") or {}).get("batch_size") for p in plans}
    return None if train_batch_size is None or recorded == {train_batch_size} else int(
        train_batch_size)


@shows_progress
@writes_run("export")
@with_stage_settings
def export_ensemble(run_dir, out_dir=None, *, retrain_full: bool = _EXPORT["retrain_full"],
                    skip_missing: bool = _EXPORT["skip_missing"],
                    export_format: str = _EXPORT["export_format"],
                    quantize: str = _EXPORT["quantize"],
                    tflite_size: int | None = _EXPORT["tflite_size"],
                    student: str | bool | None = _EXPORT["student"],
                    train_batch_size: int | None = _EXPORT["train_batch_size"], strategy=None,
                    task=None, cache_dir=None, progress: bool = True) -> ExportResult:
    """Rebuilds the members of RUN/ensemble.json and writes them as one SavedModel
    (paper 2.3: the ensemble is the weighted average of its members' probabilities).

    Every member is read through its candidate record (`hubensemble.candidate`), built with
    tune.build_classifier from its catalogue entry in run.json and loads the weights its
    trial.json names. A member tuned with ``--keep-weights none`` (``"weights": null``) is
    retrained from its recorded hyperparameters, seed and profile with tune.fit_member. With
    `retrain_full` every member is first retrained on train + validation with its own
    hyperparameters (paper 2.3: before testing); its composition and weight stay those
    chosen on validation; `train_batch_size` (an integer >= 1, --train-batch-size; None: each
    member's recorded batch) retrains them in batches of that many images, each learning rate
    x N / the member's recorded batch (`retrain.at_train_batch`, the linear rule of tune's
    --train-batch-size), for a machine with less memory than the tune's; the metadata records
    it ("train_batch_size"). The SavedModel is written by `save_export` (reload check included).

    The metadata asset records each member's inference cost and the ensemble's
    (`hubensemble.cost`: RUN/cost.json, else counted now and cached). With
    ``export_format="tflite"`` the ensemble is also converted to one TFLite model in
    OUT_DIR-tflite/ (`export.tflite.write_tflite`: input float32 [N, S, S, 3] with S =
    `tflite_size`, default the task's image size; weights as `quantize` says), checked
    against the reloaded SavedModel on the validation images and timed beside it.

    With `student` (a module name, or True for the last one `distill` wrote:
    `studentexport.student_for_export`) the distilled student of RUN/distill/ is exported
    instead, the same way as a one-member ensemble (same signatures, metadata, checks and
    TFLite option), to RUN/export-student by default; the metadata's "student" names its module,
    trial and teacher export, and run.json's "export" (the ensemble's) is left as it is.

    `out_dir` defaults to RUN/export. `strategy` (a tf.distribute.Strategy) is used for
    retraining; `cache_dir` is the embedding cache a retrained probe or LP-FT head reads
    (None: $HUBENSEMBLE_CACHE_DIR or the default, as in rank and tune). `task` is the run's
    Task when the caller has it (else it is loaded again from run.json and checked against
    the run's fingerprint). Records the result in
    run.json under "export" and returns it.

    Raises RunError when ensemble.json is missing or lists no members, a member's candidate
    has no trial.json or is not "ok", its module has no catalogue entry in run.json, its
    recorded weights file is missing, unreadable or not the one tune wrote (its sha256:
    weights the ensemble's figures were not measured of; `exportplan.plan_members`, before
    the data loads) (with `skip_missing` such a member is left out instead, with a warning,
    and the other weights renormalised to sum 1), retraining
    fails, or no member is left; and as `save_export` and (with `student`)
    `studentexport.student_for_export` do. Raises OptionError when `quantize` or
    `tflite_size` is given without `export_format="tflite"` (they would do nothing), when
    `train_batch_size` is given without `retrain_full` (`check_train_batch`), for
    `student` with `retrain_full` (`student_for_export`), for any value the command line
    refuses (`options.check_keywords`, e.g. cache_dir ""), and when another process writes
    `out_dir`, a folder outside the run (`exportfolder.folder_lock`). Warns when `out_dir`
    holds another run's export (`exportfolder.other_run`), which it moves aside first
    (`exportfolder.keep_replaced_export`: OUT-replaced-STAMP, that run's run.json then naming
    it); its metadata names this run ("run"). TypeError for a `run_dir`, `out_dir` or
    `task` of another type (`stageargs`).
    """
    from hubensemble import stageargs
    from hubensemble.rundir import Run

    run_dir = stageargs.folder("export_ensemble", "run_dir", run_dir)
    out_dir = stageargs.folder("export_ensemble", "out_dir", out_dir, optional=True)
    stageargs.task("export_ensemble", task, optional=True)

    options.check_keywords("export", dict(  # the table's rules, as the command line's
        retrain_full=retrain_full, skip_missing=skip_missing, export_format=export_format,
        quantize=quantize, tflite_size=tflite_size, cache_dir=cache_dir,
        train_batch_size=train_batch_size))
    check_export_flags(None, export_format=export_format, quantize=quantize,
                       tflite_size=tflite_size)
    check_train_batch(train_batch_size, retrain_full=retrain_full)
    start = time.time()
    run = Run(run_dir)
    default = run.export if student is None else run.path / STUDENT_EXPORT_DIR
    out_dir = absolute(out_dir if out_dir is not None else str(default))
    run.require_started()  # an empty or mistyped folder: say so, not "run ensemble"
    if student is not None:  # refused (no student, teacher changed) before any work
        from hubensemble.studentexport import student_for_export

        student = student_for_export(run.path, student, retrain_full=retrain_full,
                                     skip_missing=skip_missing)
    check_export_target(out_dir, option_word("--out", "out_dir"), run_dir=run.path,
                        tflite=export_format == "tflite")  # in the caller's words
    with folder_lock(out_dir, run.path, "export", "--out", "out_dir"):  # (a fit holds it already)
        result = _export(run, out_dir, start, retrain_full=retrain_full,
                         skip_missing=skip_missing, export_format=export_format,
                         quantize=quantize, tflite_size=tflite_size, strategy=strategy,
                         task=task, cache_dir=cache_dir, progress=progress, student=student,
                         train_batch_size=train_batch_size)
    if student is None:  # the report shows the ensemble's export, not a student's
        from hubensemble.refresh import refresh_report

        refresh_report(run.path, "the export")
    return result


def _export(run, out_dir, start, *, retrain_full, skip_missing, export_format, quantize,
            tflite_size, strategy, task, cache_dir, progress, student=None,
            train_batch_size=None) -> ExportResult:
    """`export_ensemble`'s work, holding the export folder's lock (`folder_lock`); with
    `student` (its Candidate) that one-member ensemble (`studentexport.student_as_ensemble`)."""
    from hubensemble.ensemble import read_ensemble
    from hubensemble.studentexport import student_as_ensemble, student_export_record, student_words

    # What fit checks an export against (`export.adopt`): the bytes of the ensemble it serves.
    made_from = {"ensemble": fileio.file_sha256(run.ensemble_json)
                 if run.ensemble_json.is_file() and student is None else None}
    root, redo = run.candidates, None  # None: the member's trial's own tune command
    if student is None:
        ensemble = read_ensemble(run.path)
    else:
        made_from["student"] = fileio.file_sha256(student.folder / candidate.TRIAL_FILE)
        ensemble, root = student_as_ensemble(student), run.distill
        redo = f"{student_words(run.path, student.module, student.record)} again"
    entries = list(ensemble.get("members") or [])
    if not entries:
        raise RunError(f"{escaped(absolute(run.ensemble_json))} lists no members; "
                       f"{ensemble_words(run.path)} again")
    meta = run.meta()
    _warn_unfinished(run, ensemble, meta)
    theirs = other_run(read_export_metadata(out_dir, strict=False), run.path, meta, out_dir)
    specs = catalogue_entries(run, meta.get("modules"))  # a hand-edited record: in words

    # Every member planned from its files before the data and TensorFlow load: a refusal
    # (a hand-edited record, a weights file missing or changed) came after seconds of both.
    plans, skipped = plan_members(run, entries, specs, retrain_full=retrain_full,
                                  skip_missing=skip_missing, root=root, redo=redo,
                                  student=student)
    _check_chosen(run, plans)
    if not skip_missing:  # a module moved since: said before the data loads (user 479)
        from hubensemble.restartcheck import check_members_here

        check_members_here(run, [p.spec for p in plans], option_word("export",
                                                                     "export_ensemble()"))
    if theirs:  # another run's: kept aside before the work (it was replaced, its run's
        _keep_theirs(run, out_dir, theirs)  # run.json naming a folder that held this one's)
    task = run.task(task)

    # Retraining first: fit_member resets Keras' session state, which must not happen
    # between building the members that go into one model.
    retrained = {}
    work = _weights_folder()
    try:
        for plan in plans:
            if plan.how != "weights":
                retrained[plan.index] = retrain_member(plan, task, strategy=strategy,
                                                       progress=progress, folder=work,
                                                       meta=meta, cache_dir=cache_dir,
                                                       train_batch_size=train_batch_size)
        members, exported = [], []
        # Loading each member's module and weights: seconds to minutes with real backbones,
        # which showed nothing on the terminal (a new-user check).
        bar = _bar(progress, total=len(plans), desc="export: rebuild members", unit="member")
        try:
            for plan in plans:
                bar.set_postfix_str(str(plan.entry.get("trial")))
                weights_file = retrained.get(plan.index, plan.weights_file)
                classifier, reason, fix = _build_member(plan, task, weights_file, run, meta)
                bar.update()
                if classifier is None:
                    if not skip_missing:
                        gone = escaped(absolute(root / str(plan.entry.get("trial"))))
                        fix = fix or f"{redo} (delete {gone} first)"
                        raise RunError(f"{reason}; {fix}{_or_skip(student)}")
                    log.warning("%s; leaving it out of the export (%s)", reason, _skip_words())
                    skipped.append({"trial": plan.entry.get("trial"),
                                    "module": plan.entry.get("module"), "reason": reason})
                    continue
                members.append(_export_member(plan, classifier, task, meta))
                exported.append(plan)
        finally:
            bar.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):  # this process's folder, once no export uses it
            os.rmdir(os.path.dirname(work))
    if not members:
        raise RunError("no member of the ensemble could be rebuilt "
                       f"({'; '.join(s['reason'] for s in skipped)})")
    weights = normalise_weights([m.weight for m in members], len(members))
    for m, w in zip(members, weights):
        m.weight = w
        m.info["weight"] = w
    if skipped:
        log.warning("exporting %d of %d members; weights renormalised to sum to 1",
                    len(members), len(entries))
    if export_format == "tflite":  # before the minutes of the SavedModel and the conversion
        shrunk = tflite_size_words(tflite_size, task.image_size, [m.size for m in members])
        if shrunk:
            log.warning("%s", shrunk)

    # Retrained members are other models than those ensemble.json measured: their test
    # figures are measured again (a new-user check: the summary said NLL 0.9910 where the
    # export gave 0.8881, and nowhere that the members were retrained).
    say = _teller(progress)
    test = None
    if retrain_full and task.test is not None:
        say(f"export: measuring the retrained members on the test split "
            f"({len(task.test.labels)} images)")
        test = test_after_retraining(exported, members, ensemble, task, meta,
                                     progress=progress, batch_size=train_batch_size)
    metadata = export_metadata(ensemble, members, skipped, task, retrain_full=retrain_full,
                               train_batch_size=_other_batch(train_batch_size, exported),
                               test=test, split=split_record(meta),
                               files=data_files_record(meta, task),
                               run=run_record(run.path, meta, out_dir))
    metadata["made_from"] = made_from
    if student is not None:
        metadata["student"] = student_export_record(student, run.path)
        metadata["metrics"]["source"] = f"{metadata['student']['folder']}/trial.json"
    # Which members run one frozen backbone: decided once, for the cost, SavedModel and TFLite.
    groups = backbone_groups(members)
    metadata["cost"] = _export_cost(run, members, groups, specs, task, say=say,
                                    record=student is None)
    check_images = check_batch(task)
    reloaded = []  # the SavedModel the reload check loaded: the TFLite check's reference
    diff = save_export(members, task.class_names, out_dir, check_images=check_images,
                       metadata=metadata, latency_batches=LATENCY_BATCHES, say=say,
                       groups=groups,
                       on_reload=reloaded.append if export_format == "tflite" else None)
    result = ExportResult(path=absolute(out_dir), members=[m.info for m in members],
                          skipped=skipped, max_abs_diff=diff,
                          class_names=list(task.class_names), retrain_full=bool(retrain_full),
                          seconds=0.0, cost=metadata["cost"],
                          latency_ms=read_export_metadata(out_dir).get("latency_ms"), test=test,
                          student=metadata.get("student"))

    def record():  # run.json names what is on disk at OUT (and OUT-tflite)
        result.seconds = time.time() - start
        if student is not None:  # run.json's "export" stays the ensemble's (distill's teacher)
            return
        run.update(export={**result.to_json(), **run.export_record(out_dir),
                           "time": time_stamp(),
                           "created": metadata["created"]})  # which export it records

    # The SavedModel at OUT is the new one now: recorded before the steps after it, which
    # may fail (a failed TFLite step left run.json the previous export's record).
    record()
    if export_format == "tflite":
        say(f"export: converting the {'ensemble' if student is None else 'student'} to TFLite "
            f"(quantize {quantize}), then checking "
            "it against the SavedModel and timing both")
        result.tflite = _export_tflite(members, task, out_dir, check_images, metadata,
                                       quantize=quantize, size=tflite_size, groups=groups,
                                       saved=reloaded[0]).to_json()
    else:
        _remove_stale_tflite(out_dir, run, student)
    record()
    _drop_kept_retraining(run, [p for p in exported if p.how != "weights"], train_batch_size)
    return result


def _drop_kept_retraining(run, plans, train_batch_size) -> None:
    """Removes the retrained members `retrain.kept_retraining` keeps for a resumed export
    when the run's sweep was tuned with --keep-weights none: its user chose no weights left
    in the run (a real backbone's are hundreds of MB a member); else they stay for another
    export of the same members (docs/export.md)."""
    from hubensemble.export.retrain import kept_retraining
    from hubensemble.tune.memberkeep import drop_member

    tune = run.meta().get("tune")
    if not (isinstance(tune, dict) and tune.get("keep_weights") == "none"):
        return
    for plan in plans:
        keep = kept_retraining(plan, train_batch_size)
        if keep is not None:
            drop_member(keep)


def _check_chosen(run, plans) -> None:
    """RunError when a member's trial (`plans`: `exportplan.plan_members`') was run again
    since ensemble.json chose it: the sha256 of its validation table that ensemble.json
    recorded ("val_sha256") is not the one its trial.json records now
    (`candidatefiles.written_digest`; either unrecorded: not checked). The ensemble's
    weights and figures are of the earlier trial: `tune` redoing an interrupted or changed
    trial after a stand-alone `ensemble` left the export serving the new weights under
    them, without a word. Before the data and TensorFlow load."""
    from hubensemble.candidatefiles import written_digest

    for plan in plans:
        was = plan.entry.get("val_sha256")
        now = written_digest(plan.record, candidate.VAL_PROBS_FILE)
        if isinstance(was, str) and now and was != now:
            raise RunError(
                f"member {plan.entry.get('trial')}: its trial was run again since "
                f"{escaped(absolute(run.ensemble_json))} chose it (its validation "
                f"probabilities: sha256 {was[:12]}… then, {now[:12]}… now), so the "
                "ensemble's weights and figures are of the earlier trial, not of this one; "
                f"{ensemble_words(run.path)} again (it selects from the candidates as they "
                "are now), then export")


#: The folder in the system's temp folder (`tempfile.gettempdir`) whose temp folders
#: (`fileio.temp_dir_for`: named by their process) hold the members an export retrains.
WEIGHTS_WORK = "hubensemble-export-weights"


def _weights_folder() -> str:
    """A new folder for the weights of the members an export retrains (removed by the
    caller): inside this process's temp folder of WEIGHTS_WORK in the system's temp folder,
    a dead process's removed first (`fileio.remove_stale_temp_dirs`). An export killed while
    it retrained (kill -9, the OOM killer) left its ``.tmp-export-weights-XXXX`` there for good
    (`tempfile.mkdtemp` names no writer): MBs a member, GBs with real backbones."""
    final = os.path.join(tempfile.gettempdir(), WEIGHTS_WORK)
    fileio.remove_stale_temp_dirs(final)
    mine = fileio.temp_dir_for(final)
    os.makedirs(mine, exist_ok=True)
    return tempfile.mkdtemp(dir=mine)  # one each: exports in two threads of one process


def _keep_theirs(run, out_dir, theirs: str) -> None:
    """Moves the export in `out_dir`, another run's (`theirs`: `exportfolder.other_run`'s
    words), aside and says where (`exportfolder.keep_replaced_export`, as fit keeps one;
    that run's run.json then names the kept folder); RunError naming the folder and the way
    on when it cannot be moved (nothing is moved then). Export replaced it with a warning."""
    try:
        log.warning("%s", keep_replaced_export(run, out_dir, "export"))
    except OSError as e:
        raise RunError(f"{escaped(out_dir)} holds {theirs}, which this export would replace, "
                       f"and it cannot be moved aside ({type(e).__name__}: {e}); move it "
                       f"yourself, or pass another {option_word('--out', 'out_dir')} "
                       "folder") from e


def _export_cost(run, members, groups, specs, task, say=None, record=True) -> dict | None:
    """The metadata asset's cost record: each member's `Cost` summary (RUN/cost.json's, else
    counted now through the cache, told to `say`) and the ensemble's; None when none can be
    costed. Members that share a frozen backbone (`groups`, `shared.backbone_groups`) count
    it once (`cost.sharing.counted_costs`, the rule of greedy selection's budget): after the
    group's first, a member adds only its head (its row says whose backbone it shares and
    what it counts) — what the export runs. A member's cost counted now is recorded in
    RUN/cost.json (`cost.records.add_run_costs`) unless `record` is False (a student, of
    RUN/distill/, which cost.json does not list): it was in the metadata alone, and a
    later `cost` and the readers of cost.json had none or another."""
    import dataclasses as dc

    from hubensemble.cost import (DEFINITION, add_run_costs, machine_info, read_run_costs,
                                  total_cost)
    from hubensemble.cost.sharing import counted_costs, head_cost
    from hubensemble.cost.stage import module_cost
    from hubensemble.export.shared import first_of

    recorded = read_run_costs(run.path)
    machine = recorded.machine or machine_info()
    first = first_of(groups)
    costs, rows, counted = {}, [], {}
    for i, m in enumerate(members):
        trial = m.info["trial"]
        cost = recorded.costs.get(trial)
        if cost is None or cost.size != m.size:
            if say is not None:
                say(f"export: counting the cost of member {trial} (not in {COST_FILE})")
            try:
                cost, _ = module_cost(module_spec(run, m.info["module"], trial, modules=specs),
                                      task.num_classes, m.size, machine=machine)
            except HubensembleError as e:
                reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
                log.warning("member %s cannot be costed: %s", trial, first_line(e))
                continue
            counted[trial] = cost  # as the cost pass counts it (the module's own head)
        head = getattr(m.classifier, "head", None)
        if head is not None:  # its own head's D x C, as the export holds it
            cost = dc.replace(cost, head_macs=int(np.prod(head.kernel.shape)))
        row = {"trial": trial, **cost.summary()}
        if first[i] != i and head_cost(cost) is not None:
            row["shares_backbone_with"] = members[first[i]].info["trial"]
            row["counted"] = head_cost(cost).summary()
        costs[i] = cost
        rows.append(row)
    if counted and record and (path := add_run_costs(run.path, counted, machine)):
        log.info("export: recorded the cost of %s in %s", counted_words(len(counted), "member"),
                 escaped(absolute(path)))
    if not costs:
        return None
    return {"definition": DEFINITION, "machine": machine, "members": rows,
            "ensemble": (total_cost(counted_costs([costs[i] for i in range(len(members))],
                                                  groups))
                         if len(costs) == len(members) else None)}


def _bar(progress, **kwargs):
    """A bar on stderr as rank's and tune's (`terminal.progress_bar`; none when not
    `progress`: -q, Python)."""
    return progress_bar(shown=progress, **kwargs)


def _teller(progress):
    """text -> None: a line on the terminal unless not `progress` (-q), and in RUN/log.txt
    (`terminal.say`), for the export's long steps."""
    from types import SimpleNamespace

    from hubensemble.terminal import say

    return lambda text: say(SimpleNamespace(quiet=not progress), text)


def _remove_stale_tflite(out_dir, run, student=None):
    # A TFLite model is checked against the SavedModel written with it; this export replaced
    # that SavedModel (often for other members), so the model beside it is of no export now
    # (a new-user check: RUN/export-tflite kept an earlier ensemble, its check "passed").
    from hubensemble.export.tflite import remove_tflite_export

    folder = f"{out_dir}-tflite"
    if not remove_tflite_export(folder):  # a folder of the user's of that name is theirs
        return
    # In the caller's words: export_ensemble(…, export_format='tflite') from Python.
    from hubensemble.lockwords import call_verb

    # A student export: its --student (student=) by the one rule, whose own folder is
    # RUN/export-student (--student put in by hand here named --out RUN/export-student).
    log.warning("removed %s: its TFLite model was converted from the SavedModel this export "
                "replaced; %s %s for one of this export", escaped(folder), call_verb(),
                run.export_words(out_dir, student=student and student.module,
                                 flags="--format tflite", keywords="export_format='tflite'"))


def _export_tflite(members, task, out_dir, check_images, metadata, *, quantize, size,
                   groups=None, saved=None):
    """`tflite.write_tflite` of the members to OUT_DIR-tflite/, checked against the SavedModel
    just written at OUT_DIR on the check images resized to the TFLite input size. `saved`:
    that SavedModel as its reload check loaded it (`save_export`'s on_reload), loaded again
    from OUT_DIR when not given."""
    import tensorflow as tf

    from hubensemble import augment
    from hubensemble.export.tflite import write_tflite

    hw = (int(size), int(size)) if size else tuple(int(v) for v in check_images.shape[1:3])
    images = check_images
    if tuple(images.shape[1:3]) != hw:
        images = augment.resize(images, hw).numpy()
    if saved is None:
        saved = tf.saved_model.load(fileio.tf_path(out_dir))
    serve = saved.signatures[SERVING_SIGNATURE]
    meta = {k: metadata[k] for k in ("created", "task", "objective", "members", "best_single",
                                     "metrics", "cost") if k in metadata}
    return write_tflite(members, task.class_names, f"{out_dir}-tflite", input_hw=hw,
                        check_images=images, quantize=quantize, metadata=meta, groups=groups,
                        reference=lambda x: serve(images=tf.constant(x))["probabilities"])


def tflite_size_words(size, task_hw, member_sizes) -> str | None:
    """The warning for a TFLite input size `size` (S px, square; None: the default, the
    task's (H, W), never warned of) that loses detail the SavedModel's members see, else None.
    `task_hw`: the task's image size (H, W) px (`Task.image_size`: its training images'
    median); `member_sizes`: each member's input size in px (its eval_size).

    The SavedModel resizes an image once to each member's size m, so a member sees
    min(H, m) x min(W, m) of it; the TFLite model first takes it at S x S. S below
    min(max(H, W), max(m)) makes some member see less than in the SavedModel, and the
    export's check does not show it: it runs both models on the check images shrunk to S
    (`export --tflite-size 1` on 12 px data wrote a 1 x 1 input model whose check passed).
    S at least that keeps it (images of other sizes: S = the largest member's size, as
    docs/export.md measures). A warning, not a refusal: the model is valid and a user may
    trade detail for speed knowingly; no size follows from a hub module's graph below which
    its kernels see nothing."""
    if size is None or not member_sizes:
        return None
    height, width = (int(v) for v in task_hw)
    largest = max(int(m) for m in member_sizes)
    keeps = min(max(height, width), largest)
    if int(size) >= keeps:
        return None
    flag = option_word(f"--tflite-size {int(size)}", f"tflite_size={int(size)}")
    out = option_word("leave --tflite-size out", "leave tflite_size out (None)")
    at_least = option_word(f"--tflite-size {keeps}", f"tflite_size={keeps}")
    sizes = ", ".join(str(m) for m in sorted({int(m) for m in member_sizes}))
    widest = option_word(f"--tflite-size {largest}", f"tflite_size={largest}")
    other = (f" (for images of other sizes {widest}, the largest member's)"
             if largest > keeps else "")
    return (f"{flag} makes the TFLite model take {int(size)}x{int(size)} px images, below the "
            f"task's {height}x{width} px (its training images' median) and the members' inputs "
            f"({sizes} px): every image is shrunk to {int(size)} px first, so the model loses "
            "detail the SavedModel's members see, and its check, run on the check images "
            f"shrunk alike, does not show it; {out} for the task's size, or pass {at_least} or "
            f"more{other}")


def check_batch(task, n: int = CHECK_BATCH) -> np.ndarray:
    """The reload check's images: up to `n` validation images (training images when there is
    no validation split), float32 [<= n, H, W, 3] in [0, 1]; images of mixed sizes are
    resized to the task's median size."""
    split = "val" if task.val is not None else "train"
    data = task.split(split)
    size = None if data.same_size else task.image_size
    ds = task.dataset(split, batch_size=n, image_size=size, cache=False)
    images, _ = next(iter(ds))
    return images.numpy()


def _warn_unfinished(run, ensemble: dict, meta: dict) -> None:
    """Warns when the ensemble to export was selected from an unfinished sweep's pool
    (ensemble.json "unfinished", `sweepstate`): while the sweep is still unfinished, with
    the command that finishes it; once it has finished since, with `ensemble` to select
    from the whole pool. The export serves it either way (a user may want it)."""
    if not ensemble.get("unfinished"):
        return
    from hubensemble.lockwords import call_verb
    from hubensemble.sweepstate import unfinished_warning

    # The ensemble's own settings (--budget, --size-rule …): a plain `ensemble --run RUN`
    # selected again under the defaults.
    again = ensemble_words(run.path)
    then = ("the fit selects and exports the ensemble itself" if "fit" in meta
            else f"{again} and {option_word('this command', 'export_ensemble()')} again")
    log.warning("%s", unfinished_warning(run.path, meta, what="the ensemble it exports",
                                         then=then) or (
        f"the ensemble was selected before the sweep finished ({ensemble['unfinished']} "
        f"then): {call_verb()} {again} to select from the whole pool, then export again"))
