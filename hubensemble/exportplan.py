"""Which members of an ensemble (RUN/ensemble.json, or a student's one) an export can build,
from their files alone: each member's candidate record, catalogue entry and weights file
(`plan_members`; a refusal names the file and the way on), split out of `export.stage` and
`export.memberplan` so that the command line refuses them before TensorFlow loads
(`check_members`). No TensorFlow (the `export` package imports it)."""

from __future__ import annotations

import dataclasses
import logging

from hubensemble import candidate
from hubensemble.errors import RunError, first_line, reraise_stop
from hubensemble.formats import DISTILL_DIR
from hubensemble.lockwords import option_word
from hubensemble.sweepwords import ensemble_words, redo_words
from hubensemble.text import absolute, escaped
from hubensemble.weightsfile import changed_since

# The export stage's logger: its warnings read as the export stage's, as before the split.
log = logging.getLogger("hubensemble.export.stage")


@dataclasses.dataclass
class _Plan:
    index: int
    entry: dict                 # the member's entry of ensemble.json
    cand: candidate.Candidate   # its candidate folder, read through trial.json
    spec: object                # ModuleSpec
    how: str                    # "weights" | "retrain" | "retrain_full"
    weights_file: str | None = None
    meta_path: object = None    # run.json's path, which a damaged record of it is named by

    @property
    def record(self) -> dict:
        return self.cand.record


def _plan_member(run, index, entry, specs, *, retrain_full, root=None, say=True):
    """(_Plan, None, None) or (None, reason the member cannot be used, its Candidate when the
    reason is its weights file changed since tune (distill) wrote it, else None); its
    candidate folder is in `root` (RUN/candidates, or RUN/distill for a student). Files and
    JSON only: said before TensorFlow loads."""
    from hubensemble.runspecs import module_spec

    trial = entry.get("trial")
    module = entry.get("module")
    who = f"member {index} (trial {trial!r}, module {module!r})"
    folder = (root or run.candidates) / str(trial)
    cand, why = candidate.inspect(folder)
    if cand is None:
        return None, f"{who}: {escaped(absolute(folder))}: {why}", None
    if cand.status != "ok":
        return None, f"{who}: its candidate has status {cand.status!r}", None
    try:  # before TensorFlow builds or retrains anything: edited by hand, not missing
        cand.read_hparams()
    except RunError as e:
        raise RunError(f"{who}: {e}") from None
    try:  # missing or edited by hand: said before TensorFlow builds anything
        spec = module_spec(run, module, modules=specs)
    except RunError as e:
        raise RunError(f"{who}: {e}") from None
    if cand.faults and say:
        # The candidate is incomplete by the one rule (`Candidate.faults`): say so. The
        # export itself needs only the weights, checked below (or none when retraining).
        log.warning("%s: candidate %s is incomplete (%s)", who, escaped(absolute(folder)),
                    "; ".join(cand.faults))
    if retrain_full:
        return (_Plan(index, entry, cand, spec, "retrain_full", meta_path=run.meta_path),
                None, None)
    path = cand.weights_path
    if path is None:
        return _Plan(index, entry, cand, spec, "retrain", meta_path=run.meta_path), None, None
    shown = escaped(absolute(path))  # as ensemble.py names a file: pasteable
    if not path.is_file():  # kept in metadata
        return None, f"{who}: its weights file {shown} is missing", None
    # Weights other than those its trial validated and the ensemble chose on: serving them is
    # serving a model no figure was measured of (it was exported with a warning). Before the
    # open: a file cut short since tune wrote it is a changed file (sha256, restore or redo
    # it), not an h5py error ("unreadable (Unable to synchronously open file …)").
    writer = "distill" if folder.parent.name == DISTILL_DIR else "tune"
    changed = changed_since(cand.record, path, writer)
    if changed or cand.changed_file(path.name):
        changed = changed or f"its weights file {shown} " + cand.changed_file(
            path.name).removeprefix(f"{path.name} ")
        why = ("its recorded figures are" if writer == "distill" else
               "the ensemble chose it by the figures")
        return None, f"{who}: {changed}; {why} of the weights {writer} wrote, not of these", cand
    try:
        # Open it now so a broken file fails the export before any member is retrained
        # (one whose trial recorded no sha256: an older hubensemble's).
        import h5py

        with h5py.File(path, "r"):
            pass
    except Exception as e:  # noqa: BLE001 - h5py raises OSError and others for a bad file
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        return None, f"{who}: its weights file {shown} is unreadable ({first_line(e)})", None
    return _Plan(index, entry, cand, spec, "weights", str(path), run.meta_path), None, None


def plan_members(run, entries, specs, *, retrain_full, skip_missing, root, redo=None,
                 student=None, say=True) -> tuple[list, list]:
    """(plans, skipped) of ensemble.json's member `entries` (dicts) of `run` (a Run), each
    planned by `_plan_member` from its candidate folder in `root` (RUN/candidates, or
    RUN/distill for a student); `skipped`: [{"trial", "module", "reason"}] of those left
    out with `skip_missing` (a warning each). `specs`: run.json's catalogue entries
    (`runspecs.catalogue_entries`). `redo`: a student's way on (its distill command), None
    for a trial's tune command; `student`: its Candidate, or None. Raises RunError for a
    member that cannot be exported without `skip_missing`, naming it and the way on, and
    for one no flag passes (its record or catalogue entry edited by hand). Without `say`,
    nothing is logged (`check_members`: the stage says it)."""
    plans, skipped = [], []
    for i, entry in enumerate(entries):
        plan, reason, changed = _plan_member(run, i, entry, specs, retrain_full=retrain_full,
                                             root=root, say=say)
        if reason is None:
            plans.append(plan)
            continue
        if changed is not None and not skip_missing:  # redone as it is: no delete first
            raise RunError(f"{reason}: {_changed_way_on(run, changed, redo)}"
                           f"{_or_skip(student, 'the ensemble')}")
        if not skip_missing:
            # The folder itself, as the rest of the sentence names the run: "RUN/…" was a
            # placeholder pasted literally (a new user's check). Deleted first only where
            # tune reuses the folder (no readable record, failed, or complete: a trial of a
            # version before trial.json recorded its files); a missing or changed weights
            # file makes the trial incomplete, which tune redoes as it is (a student's
            # distill: as before).
            folder = root / str(entry.get("trial"))
            cand = candidate.read_candidate(root, str(entry.get("trial")))
            redone = redo is None and cand is not None and not cand.complete
            first = (f" (delete {escaped(absolute(folder))} first)"
                     if folder.exists() and not redone else "")
            again = redo or f"{redo_words(run.path, str(entry.get('trial')))} again for it"
            raise RunError(f"{reason}; {again}{first}{_or_skip(student, 'the ensemble')}")
        if say:
            log.warning("%s; leaving it out of the export (%s)", reason, _skip_words())
        skipped.append({"trial": entry.get("trial"), "module": entry.get("module"),
                        "reason": reason})
    return plans, skipped


def check_members(run_dir, student=None, *, retrain_full=None, skip_missing=None) -> None:
    """RunError, before TensorFlow loads, where `export_ensemble` would refuse the members of
    run `run_dir` (RUN/ensemble.json's, or with `student`, a module name or True, the
    distilled student's: `studentexport.student_for_export`) from their files, in its words
    (`plan_members`, nothing logged): run.json's catalogue entries or a member's trial.json
    edited by hand, always; with `retrain_full` and `skip_missing` given (bools) also a
    weights file missing, unreadable or changed since tune wrote it, which those flags
    decide (a student's export takes neither: all of them). None (unknown) takes the
    refusals no flag passes only; with `skip_missing` False also a member's module moved or
    deleted since (`restartcheck.check_members_here`, 479's: after TensorFlow's import).
    It came after TensorFlow's import and the data's load (7-9 s, 700 MB). Nothing when the
    run holds no ensemble to export (the stage says so in its own words)."""
    from hubensemble.ensemble import read_ensemble
    from hubensemble.rundir import Run
    from hubensemble.runspecs import catalogue_entries
    from hubensemble.studentexport import (student_as_ensemble, student_for_export,
                                           student_words)

    run = Run(run_dir)
    meta = run.meta()
    if student is None:
        if not run.ensemble_json.is_file():
            return
        ensemble, root, redo, cand = read_ensemble(run.path), run.candidates, None, None
    else:
        cand = student_for_export(run.path, student)
        ensemble, root = student_as_ensemble(cand), run.distill
        redo = f"{student_words(run.path, cand.module, cand.record)} again"
    entries = ensemble.get("members")
    if not entries or not isinstance(entries, list):
        return
    specs = catalogue_entries(run, meta.get("modules"))
    if cand is not None:  # a student's export takes neither flag (`student_for_export`)
        retrain_full = skip_missing = False
    unknown = retrain_full is None or skip_missing is None
    plans, _ = plan_members(run, entries, specs, retrain_full=True if unknown else retrain_full,
                            skip_missing=True if unknown else skip_missing, root=root,
                            redo=redo, student=cand, say=False)
    if skip_missing is False:  # a module moved since: the stage's refusal, before TensorFlow
        from hubensemble.restartcheck import check_members_here

        check_members_here(run, [p.spec for p in plans],
                           option_word("export", "export_ensemble()"))


def _changed_way_on(run, cand, redo=None) -> str:
    """The way on of a member whose weights file changed since its writer wrote it (`cand`,
    its Candidate): "restore the file, or run `hubensemble tune …` again (it redoes the
    trial), then `hubensemble ensemble …` and this export again"; tune redoes a trial whose
    file changed as it is (`Candidate.complete`), and one of a version before trial.json
    recorded its files, which tune reuses, is deleted first (by its whole path). `redo`: a
    student's words ("run `hubensemble distill …` again"), which replace tune's."""
    from hubensemble.sweepwords import redone_by_fit

    again = option_word("this export", "this export_ensemble call")
    if redo is not None:
        return f"restore the file, or {redo}, then {again} again"
    first = "" if not cand.complete else f"delete {escaped(absolute(cand.folder))} and "
    after = (f", then {again} again" if redone_by_fit(run.path, cand.trial) else
             f", then {ensemble_words(run.path)} and {again} again")
    return (f"restore the file, or {first}{redo_words(run.path, cand.trial)} again (it redoes "
            f"the trial){after}")


def _skip_words() -> str:
    """The option that leaves a member out, in the caller's words (`lockwords.option_word`)."""
    return option_word("--skip-missing", "skip_missing=True")


def _or_skip(student, what: str = "") -> str:
    """", or pass --skip-missing to export [the ensemble] without it", the way past a member
    that cannot be exported; "" for a student's one-member export, which nothing is left of
    without it (a new-user check: the words offered it)."""
    if student is not None:
        return ""
    return f", or pass {_skip_words()} to export {what + ' ' if what else ''}without it"
