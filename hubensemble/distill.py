"""Distillation (Hinton et al., 2015): one student trained on the ensemble's probabilities.

`run_distill(run_dir, …)` trains one module (the student) on the exported ensemble's
averaged probabilities over the augmented training images, through tune's own code path
(`tune.fit_member` with `targets` = the teacher: the same HubLayer, zero head, schedule,
augmentation and MixUp as a trial), writes it like a member (a candidate folder,
RUN/distill/<trial>/, through `hubensemble.candidate.write_candidate`) and compares it with
the best single member and the ensemble on the test split, at their inference costs
(RUN/distill.json). The student is never added to RUN/candidates/, so it does not enter a
later greedy selection.

The teacher is the SavedModel `hubensemble export` wrote (its serving_default on float32
images of any size: the weighted average of the members, each resizing to its own size), so
what the student imitates is exactly what is served. Hinton et al.'s temperature is 1 here:
the targets are the averaged probabilities themselves. The student starts from its
module's fine-tuned member, from the pre-trained module, or (default) from both, keeping the
better on validation (`init`). A teacher retrained on train + val (`--retrain-full`) is
compared as it is: run on the run's test split (`distillcompare.retrained_test`), not through
ensemble.json's figures of its members before retraining. The comparison and the summary
table are in `hubensemble.distillcompare`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from hubensemble import candidate, fileio, metrics, options
# The comparison and its table (distillcompare.py), re-exported here for the callers that
# import them from this module.
# The student's module and what it is judged by (split out of this module).
from hubensemble.distillchoice import (_base_candidate, _check_student,  # noqa: F401
                                       _choose_student, _costs, _student_cost,
                                       check_gflops_from_records, check_student,
                                       student_way)
from hubensemble.distillcompare import (Z_SIGNIFICANT, DistillResult, _compare,  # noqa: F401
                                        _describe, ensemble_cost, format_distill, paired_gap,
                                        read_distill, retrained_test)
from hubensemble.errors import RunError, first_line
from hubensemble.formats import (SERVING_SIGNATURE, export_identity, export_members_differ,
                                 read_export_metadata, unloadable_path)
from hubensemble.lockwords import call_verb, option_word, run_words
from hubensemble.runspecs import catalogue_entries, module_spec
from hubensemble.runwriter import writes_run
from hubensemble.studentexport import teacher_content
from hubensemble.terminal import bar_note, counting_note, progress_bar, shows_progress
from hubensemble.text import absolute
from hubensemble.threads import one_training, training_block
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)

_DISTILL = options.defaults_for("distill")

#: Where the student starts (`run_distill`'s `init`, `--distill-init`): "best" trains one
#: student from each start and keeps the one with the lower validation cross-entropy.
DISTILL_INITS = ("best", "member", "module")


@shows_progress
@writes_run("distill")
@with_stage_settings
def run_distill(run_dir, *, student: str | None = _DISTILL["student"],
                max_gflops: float | None = _DISTILL["max_gflops"],
                steps_scale: float = _DISTILL["steps_scale"], mixup: float = _DISTILL["mixup"],
                init: str = _DISTILL["init"], lr_scale: float = _DISTILL["lr_scale"],
                train_batch_size: int | None = _DISTILL["train_batch_size"],
                task=None, strategy=None, progress: bool = True) -> DistillResult:
    """Trains one student on the ensemble of RUN (see the module docstring); returns and
    writes the comparison (RUN/distill.json) and the student's candidate folder.

    The student's module: `student` (a module of run.json's catalogue), else with
    `max_gflops` the module within that cost (per image, at its serving resolution) whose
    best candidate has the lowest validation cross-entropy, else the cheapest member's
    module. It starts (`init` "member") from the fine-tuned weights of its module's
    candidate with the lowest validation cross-entropy among the ensemble's members (else
    among the module's candidates), so it starts at that candidate's accuracy and moves
    towards the ensemble; or (`init` "module", or when that candidate kept no weights or is
    a probe) from the pre-trained module with tune's head start for it, as a trial does;
    `init` "best" (the default) trains one student from each start and keeps the one with
    the lower validation cross-entropy (the run's selection objective; both are recorded in
    the student's trial.json, "init_tried"). Its
    hyperparameters are that candidate's when it was fine-tuned, else those of the module's
    best fine-tuned candidate, else the paper's single-model configuration planned for the
    module (`_student_hparams`), with ``round(steps * steps_scale)`` steps, learning rate x
    `lr_scale` and MixUp alpha `mixup` on its training images (`train_batch_size`, an integer
    >= 1: in batches of that many images, the learning rate x it / their batch, the linear rule
    of tune's --train-batch-size; None: their batch): the teacher labels each mixed
    image itself, so the student matches the teacher's function between the training images
    too (Beyer et al., 2022,
    "Knowledge distillation: a good teacher is patient and consistent": same augmented image
    for both, longer schedules). Measured on the demo and dev tasks (docs/cost.md): neither
    start wins everywhere, and the lower validation cross-entropy picked the start with the
    higher test accuracy.
    Costs come from RUN/cost.json (computed now for what it lacks). A student of the same
    module already in RUN/distill/ is replaced (a warning names both; `DistillResult.replaced`
    keeps its record); those of other modules stay and are listed (`students`).

    Raises RunError when ensemble.json or the export is missing or stale (naming the command
    that writes it), a retrained export run on the test split does not give the test record
    it wrote (`distillcompare.retrained_test`, before training), the student's module is
    unknown, failed in rank, changed in place since rank (`rank.refuse_changed_modules`) or
    is over `max_gflops`, or training fails. HubensembleError, before training, for a student
    batch that does not divide among the replicas of `strategy` (a tf.distribute.Strategy;
    None: the one in scope; `strategies.check_batch_divides`). TypeError for a `run_dir` or
    `task` of another type (`stageargs`); OptionError, first, for an option outside the
    options table's rules (`init` not one of DISTILL_INITS, `steps_scale` not > 0, …).
    """
    from hubensemble import stageargs
    from hubensemble.ensemble import read_ensemble
    from hubensemble.rundir import Run

    run_dir = stageargs.folder("run_distill", "run_dir", run_dir)
    stageargs.task("run_distill", task, optional=True)

    options.check_keywords("distill", dict(  # the table's rules, as the command line's
        student=student, max_gflops=max_gflops, steps_scale=steps_scale, mixup=mixup,
        init=init, lr_scale=lr_scale, train_batch_size=train_batch_size))
    start = time.time()
    run = Run(run_dir)
    run.require_started()  # an empty or mistyped folder: say so, not "run ensemble"
    ens = read_ensemble(run.path)
    meta = run.meta()
    specs = catalogue_entries(run, meta.get("modules"))  # a hand-edited record: in words
    if student is not None:  # a mistyped --student: refused before TensorFlow and the data load
        _check_student(student, specs, run)  # (the CLI checks before importing TensorFlow too)

    export_dir, teacher_members = _teacher_export(run, meta, ens)  # before the data loads
    # --max-gflops decided by the records: before TensorFlow loads and the data is read.
    check_gflops_from_records(run, student, max_gflops, ens, specs)
    teacher = export_identity(export_dir) or {}  # the export it learns from, as it loads it
    # what it computes, which a re-export of the same ensemble keeps (student_for_export)
    content = teacher_content(read_export_metadata(export_dir, strict=False))

    from hubensemble._tf import keras, tensorflow as tf

    from hubensemble import tune
    from hubensemble.ensemble import load_candidates
    from hubensemble.export.retrain import StepBar, at_train_batch
    from hubensemble.tune.strategies import check_batch_divides
    from hubensemble.tune.memberkeep import drop_member, running
    from hubensemble.tune.plans import trial_profile

    task = run.task(task)
    cands, _ = load_candidates(run.path)
    costs = _costs(run, cands, task)

    spec_name = _choose_student(student, max_gflops, ens, cands, costs, specs, run, task, meta)
    spec = module_spec(run, spec_name, modules=specs)
    if run.ranking_json.exists():  # a run assembled by hand has no fingerprint to compare
        from hubensemble.rank import load_ranking, refuse_changed_modules

        # Its member's weights (init "member") and the run's costs are of the old files.
        refuse_changed_modules(run.path, load_ranking(run.path).ok_rows, [spec], meta=meta)
    own = [c for c in cands if c.module == spec_name]
    # Without a candidate of its own, the run's best gives the profile and seed (its
    # hyperparameters are another module's: _student_hparams plans the student's own).
    base = _base_candidate(own, cands, ens)
    profile = trial_profile(base.record, meta, run.meta_path)
    hparams, hparams_from = _student_hparams(base, own, spec, profile)
    start_weights = _start_weights(init, base if own else None)
    aug = hparams.augmentation
    hparams = at_train_batch(hparams, train_batch_size)  # the lr scales linearly with it
    hparams = dataclasses.replace(
        hparams, steps=max(1, int(round(hparams.steps * steps_scale))), mixup_alpha=float(mixup),
        lr=float(hparams.lr) * float(lr_scale),
        augmentation=None if aug is None else dataclasses.replace(aug, mixup_alpha=float(mixup)))
    # Both starts, before either trains: a start from a candidate's weights trained to its
    # end and failed in Keras' fit (tune.fit_member, the module's start, checks alone).
    check_batch_divides(strategy or tf.distribute.get_strategy(), hparams.batch_size,
                        by_name=False)
    size = int(tune.eval_size(task, spec, profile))
    student_cost = _student_cost(spec, task, size, costs, own)
    if max_gflops is not None and student_cost.gflops is None:  # the limit cannot be checked
        raise RunError(f"{option_word('--max-gflops', 'max_gflops')} {max_gflops:g} cannot be "
                       f"checked for the student {spec_name}: its multiply-accumulates were "
                       f"not counted at {size} px ({student_cost.not_counted()}); drop the "
                       "limit, or choose a student whose GFLOPs are known")
    if max_gflops is not None and student_cost.gflops > max_gflops * (1 + 1e-9):
        raise RunError(f"the student {spec_name} needs {student_cost.gflops:.4g} GFLOPs per "
                       f"image at {size} px, over {option_word('--max-gflops', 'max_gflops')} "
                       f"{max_gflops:g}; "
                       + student_way(student_cost.gflops, "the student", "choose another"))

    said = probe_start_words(hparams, ens.get("members") or [], spec_name, profile, run.path,
                             lr_scale=lr_scale)
    if said:  # before the minutes of training it would spend to end at a probe
        log.warning("%s", said)
    said = costlier_words(spec_name, student_cost.gflops, size,
                          (ensemble_cost(ens, costs, cands, run, specs) or {}).get("gflops"))
    if said:
        log.warning("%s", said)

    # init "best": both starts, the one with the lower validation cross-entropy is kept.
    starts = [start_weights] + ([None] if init == "best" and start_weights else [])
    callbacks, bar = [], None
    if progress:  # from the teacher's load on: its check ran before, silent for minutes
        bar = progress_bar(total=hparams.steps * len(starts), desc=f"distill into {spec_name}",
                           unit="step")
        callbacks.append(StepBar(bar))
    tried, reasons = [], []
    try:
        bar_note(bar, "loading the teacher")
        # Keep the loaded object: its signature alone does not keep the variables alive.
        loaded = tf.saved_model.load(fileio.tf_path(export_dir))
        # A teacher retrained on train + val is compared as it is: run on the test split (and
        # checked against its own test record) before minutes of training, not after.
        teacher_test = retrained_test(loaded, export_dir, task, run_dir=run.path,
                                      note=counting_note(bar, "checking the teacher on test",
                                                         "images"))

        def targets(images):
            serve = loaded.signatures[SERVING_SIGNATURE]
            return serve(images=tf.cast(images, tf.float32))["probabilities"]

        t0 = time.perf_counter()
        keeps = {w: _kept_student(run, spec_name, w, base, teacher, content) for w in starts}
        for weights in starts:
            # Which start trains, its phases and steps as a tune trial's ("STUDENT from …:
            # loading the module", "…: step 12/50, loss 0.9"), then "STUDENT from …:
            # predicting val, 128/200 images": the bar stood at 100% while the student's val
            # and test predictions ran.
            note = tune.train.TrialProgress(bar, f"{spec_name} from "
                                            + (f"candidate {base.trial}" if weights
                                               else "the module"))
            try:
                with running():  # a stop's line says what it lost of this student
                    if weights is None:
                        model = tune.fit_member(spec, task, hparams, profile=profile,
                                                strategy=strategy, callbacks=[*callbacks, note],
                                                targets=targets, keep=keeps[weights])
                    else:
                        model = _fit_from_weights(spec, task, hparams, weights,
                                                  profile=profile, strategy=strategy,
                                                  callbacks=[*callbacks, note],
                                                  targets=targets, keep=keeps[weights])
                    probs = {split: tune.train.predict_noted(model, task, split, spec=spec,
                                                             profile=profile,
                                                             batch_size=hparams.batch_size,
                                                             callbacks=[note])
                             for split in ("val", "test") if getattr(task, split) is not None}
                # As tune fails a trial of them: NaN would be kept by the NLL comparison
                # below (every comparison with NaN is false) and written as the student.
                for split, p in probs.items():
                    if not np.isfinite(p).all():
                        raise tune.TrialFailed(f"the {split} predictions are not finite "
                                               "(NaN or infinite)")
            except tune.TrialFailed as e:
                reasons.append(f"from {'candidate ' + base.trial if weights else 'the module'}"
                               f": {e}")
                continue
            except (tf.errors.ResourceExhaustedError, MemoryError) as e:
                disk = fileio.machine_error(e)  # a full disk: not the batch's
                if disk is not None:
                    raise disk from e
                raise _out_of_memory(e, spec_name, spec, hparams, profile,
                                     run_dir=run.path) from e
            tried.append((weights, model, probs))
    finally:
        if bar is not None:
            bar.close()
    if not tried:
        raise RunError(f"training the student {spec_name} failed: {'; '.join(reasons)}; "
                       f"try another start ({option_word('--distill-init', 'init')}), a lower "
                       f"learning rate ({option_word('--distill-lr', 'lr_scale')}) or another "
                       f"{option_word('--student', 'student')}")
    train_seconds = time.perf_counter() - t0
    summary = [{"init": "member" if w else "module", "init_from": base.trial if w else None,
                **{split: metrics.metrics(p[split], task.split(split).labels)
                   for split in ("val", "test") if split in p}} for w, _, p in tried]
    # Lowest validation NLL; a tie keeps the first (the member start).
    best = min(range(len(tried)), key=lambda i: (summary[i]["val"]["nll"], i))
    start_weights, model, probs = tried[best]
    trial = f"distill-{spec_name}"
    record = {"trial": trial, "module": spec_name, "handle": spec.handle,
              "hparams": hparams.to_json(), "seed": hparams.seed, "status": "ok",
              "reason": None, "kind": "distilled", "has_test": "test" in probs,
              "val": candidate.split_record(probs["val"], task.val.labels),
              "test": (candidate.split_record(probs["test"], task.test.labels)
                       if "test" in probs else None),
              "steps": hparams.steps, "profile": profile.name, "eval_size": size,
              "module_fingerprint": getattr(model.backbone, "fingerprint", None),
              "train_seconds": train_seconds, "seconds": time.time() - start,
              "teacher": {"export": export_dir, "members": teacher_members,
                          "retrain_full": bool(teacher.get("retrain_full")),
                          # which export it was: `export --student` refuses a teacher since
                          # replaced (student_for_export); in_run: a moved run's own teacher
                          "created": teacher.get("created"),
                          "metadata_sha256": teacher.get("metadata_sha256"),
                          "content": content,
                          "in_run": run.export_record(export_dir)["in_run"]},
              "hparams_from": hparams_from, "steps_scale": float(steps_scale),
              "mixup": float(mixup), "lr_scale": float(lr_scale),
              "init": "member" if start_weights is not None else "module",
              "init_from": base.trial if start_weights is not None else None,
              "init_rule": init, "init_tried": summary, "init_failed": reasons,
              # as given (None: not given): its batch alone cannot say it (`distilled_with`)
              "train_batch_size": train_batch_size}
    _warn_at_chance(trial, probs, task, hparams.steps, steps_scale, lr_scale,
                    teacher_at_chance=ens.get("at_chance"))
    earlier = candidate.read_candidate(run.distill, trial)
    written = candidate.write_candidate(run.distill, record, val_probs=probs["val"],
                                        test_probs=probs.get("test"),
                                        save_weights=model.save_weights)
    for keep in keeps.values():  # written: the student holds what they were kept for
        drop_member(keep)
    with training_block():  # as a trial's: no other thread's model is seeded meanwhile
        keras.backend.clear_session()
    result = _compare(run, ens, record, written, probs, task, student_cost, costs, cands,
                      teacher_test=teacher_test)
    result.students = student_records(run.distill)
    if earlier is not None and earlier.ok:
        result.replaced = _student_record(earlier.record, run.distill)
        new = _student_record(record, run.distill)
        log.warning("replaced the earlier student %s (%s) by this one (%s); distill.json keeps "
                    "the earlier one's record under 'replaced': run distill with its options to "
                    "train it again", trial, _describe(result.replaced), _describe(new))
    fileio.atomic_write_json(run.distill_json, result.to_json())
    from hubensemble.refresh import refresh_report

    result.report = refresh_report(run.path, "the student")
    return result


def _out_of_memory(exc, spec_name, spec, hparams, profile, *, run_dir=None) -> RunError:
    """A RunError for the student's training or prediction that ran out of memory (`exc`:
    TensorFlow's ResourceExhaustedError, Python's MemoryError): names the batch it trained
    in and the training batch that fits this process's memory (`memory.room`,
    `memory.fitting_train_batch` beside the teacher export, `memory.EXPORT_EXTRA`, a power of
    two), else a quarter of the batch (half of 2 or 3; none of 1) when the room cannot be
    read or the rule says it fits (the rule is a lower bound measured on MobileNet V1); then
    the room's way on (`memory._more`: under `ulimit -v`, raising it) or a smaller student;
    in the caller's words (`lockwords.option_word`): "--train-batch-size 4" and "--student"
    on the command line, "train_batch_size=4" and "student='NAME'" from Python; counting the
    student's bytes per pixel rank measured in `run_dir` (`memory.measured_factors`)."""
    from hubensemble import memory

    batch, room, fits = int(hparams.batch_size), memory.room(), 0
    measured = memory.measured_factors(run_dir, [spec_name]) if run_dir else None
    if room is not None:
        limit = min(room.limit, room.available or room.limit)
        fits = memory.fitting_train_batch(limit, [spec.input_size],
                                          getattr(profile, "name", "cpu"),
                                          side=getattr(profile, "resolution_cap", None),
                                          extra=memory.EXPORT_EXTRA,
                                          factor=measured[0] if measured else 1.0)
        fits = 1 << (fits.bit_length() - 1) if fits else 0
    if not 0 < fits < batch:
        fits = batch // 4 or batch // 2
    # In the caller's words, each option as it is given: "--train-batch-size 4" and "--student
    # NAME" on the command line, "train_batch_size=4" and "student='NAME'" from Python (the
    # words mixed Python's "train_batch_size 4" with the flag --student).
    given = option_word(f"--train-batch-size {fits}", f"train_batch_size={fits}")
    lower = f"pass {given} (the learning rate scales with it), " if fits else ""
    other = option_word("name a --student of a smaller input size",
                        "pass student='NAME', a module of a smaller input size")
    # The room's way on (`memory._more`), as tune's (`memory.training_out_of_memory`): under
    # `ulimit -v`, raising it, not "free memory, use a machine with more".
    # MALLOC_ARENA_MAX=2 only where the room it adds covers the batch that ran out (`need`).
    need = memory.training_need([spec.input_size], getattr(profile, "name", "cpu"), batch=batch,
                                side=getattr(profile, "resolution_cap", None),
                                factor=measured[0] if measured else 1.0)[0]
    more = memory._more(room, "free memory, use a machine with more", need=need)
    return RunError(f"distill ran out of memory training the student {spec_name} in batches of "
                    f"{batch} images ({type(exc).__name__}: {first_line(exc)}): {lower}{more}, "
                    f"or {other}")


def costlier_words(student: str, gflops: float, size: int, teacher_gflops) -> str | None:
    """The warning, said before training, for a student of module `student` that costs
    more than the ensemble it learns from (`gflops` per image at `size` px against the
    ensemble's `teacher_gflops`, `distillcompare.ensemble_cost`; either None: unknown, or
    not counted (`Cost.macs_not_counted`), no word):
    distillation is for a cheaper model (Hinton et al., 2015), and a `distill --student` of a
    module 16x the one-member ensemble's GFLOPs trained and was compared without a word. The
    way on names the flag or keyword (`lockwords.option_word`)."""
    if teacher_gflops is None or gflops is None or not gflops > teacher_gflops * (1 + 1e-9):
        return None
    flag = option_word("--student", "student")
    return (f"the student {student} needs {gflops:.4g} GFLOPs per image at {size} px, "
            f"{gflops / teacher_gflops:.3g}x the ensemble it learns from ({teacher_gflops:.4g}"
            "): it would serve nothing cheaper; name a smaller module's "
            f"{flag}, or serve the ensemble's export")


def probe_start_words(hparams, members, student: str, profile, run_dir, *,
                      lr_scale: float = 1.0) -> str | None:
    """The warning, said before training, for a student that would end about equal to a
    probe of its module; None otherwise. When: every member of the teacher ensemble
    (`members`: ensemble.json's, each with its "hparams" "kind") is a probe (a `--sweep
    probe` ensemble) and the student's plan (`hparams`, after distill's scaling) starts its
    head from a probe fitted on the labels (head_init "probe": LP-FT, the rule of Profile
    `profile` for a module whose BatchNorm runs in inference mode, bn_head_init) at that
    rule's learning rate (lr x bn_lr_scale 0.001: 6.25e-6 under cpu), distill's `lr_scale`
    left at 1 (a learning rate the caller chose is not second-guessed). Seen under the cpu
    profile on a probe sweep's ensemble: such a student fine-tuned 100 steps at lr 6.25e-6
    and ended equal to the probe, learning nothing from the teacher, without a word; a zero
    head (the quick profile's, any module without that rule) learns from it. The words say
    what it would do and the way on for run `run_dir`, in the caller's words (`lockwords`):
    ship the ensemble's export (probes of the student's module share its backbone, so the
    student costs what they do), fine-tune the module first (`tune` with the default sweep,
    then ensemble and export again), or raise the learning rate (lr_scale 10: the cpu
    grid's larger LP-FT lr 6.25e-5) and steps."""
    kinds = {str((m.get("hparams") or {}).get("kind") or "finetune") for m in members
             if isinstance(m, dict)}
    rule = (hparams.head_init == "probe" and hparams.batchnorm == "inference"
            and (profile.bn_lr_scale or 1.0) < 1.0)
    if kinds != {"probe"} or not rule or lr_scale != 1.0:  # (a chosen lr: the caller's say)
        return None
    own = all(m.get("module") == student for m in members if isinstance(m, dict))
    share = (f"Its probes are of {student} and share one backbone, so the student would cost "
             "what they do: ship the ensemble's export as it is. " if own else "")
    lr = option_word("--distill-lr 10", "lr_scale=10")
    steps = option_word("--distill-steps", "steps_scale")
    # The sweep named: a plain tune of a probe run resumes its probe sweep (a new user's
    # check: pasted, it reused the probes and fine-tuned nothing).
    tune_again = run_words("tune", run_dir, flags="--sweep default", keywords="sweep='default'")
    return (f"the teacher is an ensemble of probes (fitted on the labels), and the student "
            f"{student} starts from such a probe too (head_init 'probe', profile {profile.name}'s "
            "LP-FT rule for a module whose BatchNorm runs in inference mode) and fine-tunes it "
            f"at lr {hparams.lr:.3g} for {hparams.steps} steps, which moves it next to "
            "nothing: it will end about equal to that probe, not learn the teacher. "
            f"{share}To distil, fine-tune the module first "
            f"({tune_again}, then ensemble and export), or "
            f"raise the learning rate ({lr}: the cpu grid's larger LP-FT lr) and the steps "
            f"({steps})")


def _warn_at_chance(trial, probs, task, steps, steps_scale, lr_scale, *,
                    teacher_at_chance=None) -> None:
    """A warning when the kept student is at chance (`metrics.at_chance`, the rule that
    fails a tune trial under every profile but quick) on validation or on test: it learned
    next to nothing from the teacher, and was written and compared without a word (a student
    of 150 steps at 0.10 test accuracy on 10 classes, its share of the gain -1639 %).
    `probs`: {split: float [N, C]} of "val" and, when the task has one, "test". Test counts
    too: validation chose the student's start (the lower NLL of two), and on 200 images a
    weak student is "significantly" above chance by luck (31 of 200 right on 10 balanced
    classes) while at 0.10 on test, which no choice has looked at. When the teacher, the
    ensemble, is at chance on validation itself (ensemble.json "at_chance",
    `teacher_at_chance`), it says so: a longer training cannot teach what the teacher has
    not learned."""
    splits = [(split, task.split(split).labels) for split in ("val", "test") if split in probs]
    why = [(split, reason) for split, labels in splits
           if (reason := metrics.at_chance(probs[split], labels, task.num_classes))]
    if not why:
        return
    names = {"val": "validation", "test": "test"}
    where = " and ".join(f"on {names[split]} ({reason})" for split, reason in why)
    more, lr = (option_word(f, k) for f, k in (("--distill-steps", "steps_scale"),
                                               ("--distill-lr", "lr_scale")))
    if teacher_at_chance:
        log.warning("the student %s is at chance %s, as its teacher is: the ensemble is at "
                    "chance on validation itself (%s), so no student can learn more from it; "
                    "train the members longer first (the ensemble.json note says how)",
                    trial, where, teacher_at_chance)
        return
    log.warning("the student %s is at chance %s: it learned next to nothing from the teacher; "
                "train it longer (%s, %g now: %d steps) or at another learning rate (%s, %g "
                "now)", trial, where, more, steps_scale, steps, lr, lr_scale)


def student_records(distill_dir) -> list[dict]:
    """A `_student_record` of every student folder in `distill_dir` (RUN/distill/), in trial
    order: each module's student stays there until distill trains that module again."""
    return [_student_record(c.record, distill_dir)
            for c in candidate.scan(distill_dir)[0] if c.ok]


def _student_record(rec, distill_dir) -> dict:
    """What distill.json says of one student (its trial.json `rec`): where it is, the options
    it was trained with, its teacher's members and its validation and test metrics."""
    keys = ("trial", "module", "init", "init_from", "init_rule", "steps", "steps_scale",
            "mixup", "lr_scale", "val", "test")
    return {**{k: rec.get(k) for k in keys},
            "path": os.path.join(os.path.basename(os.fspath(distill_dir)), str(rec.get("trial"))),
            "teacher_members": (rec.get("teacher") or {}).get("members")}


def _student_hparams(base, own, spec, profile):
    """(hparams, where they come from): the student's hyperparameters before distill's
    scaling (a fine-tuning HParams), and the trial they were taken from or "paper 2.2
    single-model configuration".

    `base`'s own when it is a fine-tuned candidate of the student's module (`own`: that
    module's candidates). A probe cannot learn from a teacher (it is fitted on labels), and
    another module's hyperparameters carry that module's BatchNorm rule, so otherwise: those
    of the module's fine-tuned candidate with the lowest validation cross-entropy, else the
    paper's single-model configuration (2.2: lr 0.01, 2500 steps, `tune.SEEDS_HPARAMS`) as
    tune plans it for this module (`tune.finetune_hparams`, under `profile` and the
    module's BatchNorm policy decided from its files, `tune.stage.module_batchnorm`).
    """
    from hubensemble import tune
    from hubensemble.tune.stage import module_batchnorm

    def kind(c):  # the one reader: a trial.json edited by hand is named in tune's words
        return c.read_hparams().kind

    if base in own and kind(base) == "finetune":
        return base.read_hparams(), base.trial
    tuned = [c for c in own if kind(c) == "finetune"]
    if tuned:
        best = min(tuned, key=lambda c: (c.val_ce if c.val_ce is not None else 1e9, c.trial))
        log.info("distill: the student takes the hyperparameters of %s, its module's best "
                 "fine-tuned candidate (%s is a probe)", best.trial, base.trial)
        return best.read_hparams(), best.trial
    policy, _ = module_batchnorm(spec, "auto")
    log.info("distill: module %s has no fine-tuned candidate; the student fine-tunes with the "
             "paper's single-model configuration (lr 0.01, 2500 steps, before profile %s "
             "scales them), BatchNorm %s", spec.name, profile.name, policy)
    return (tune.finetune_hparams(tune.SEEDS_HPARAMS, profile, batchnorm=policy,
                                  seed=base.seed), "paper 2.2 single-model configuration")


def _start_weights(init, base):
    """The weights file the student starts from, or None to start from the pre-trained
    module (tune's head start for it: fit_member). `init` "member" or "best": `base`'s
    fine-tuned weights when it is a fine-tuned candidate of the student's module whose
    weights were kept (else None, with a log line saying why); "module": None. A probe's
    weights are no start: its head was fitted at the module's own resolution on whole images,
    and the student trains at tune's resolution on augmented ones."""

    if init == "module":
        return None
    if base is None:
        log.info("distill: the student's module has no candidate; it starts from the "
                 "pre-trained module")
        return None
    path = base.weights_path
    if base.read_hparams().kind != "finetune" or path is None or not path.is_file():
        log.info("distill: candidate %s has no fine-tuned weights file; the student starts "
                 "from the pre-trained module", base.trial)
        return None
    return str(path)


def _kept_student(run, spec_name, weights, base, teacher, content):
    """Where a student's training is kept once its steps all ran (`tune.memberkeep`), so a
    stop while it predicts, or while the other start trains, does not cost it again:
    RUN/tuner/trained/distill-MODULE.member (from candidate `base`'s `weights` file) or
    .module (`weights` None: the pre-trained module). Its key adds the teacher export
    (`teacher`: `formats.export_identity`; `content`: `studentexport.teacher_content`) and the
    start weights' sha256 to `memberkeep.member_key`'s. Removed once the student is written."""
    from hubensemble.tune.memberkeep import KeptMember
    from hubensemble.tune.trained import trained_folder

    start = f"candidate {base.trial}" if weights else "the module"
    name = f"distill-{spec_name}.{'member' if weights else 'module'}"
    return KeptMember(trained_folder(run), name, f"distill: the student {spec_name} from {start}",
                      {"teacher": {k: teacher.get(k) for k in ("created", "metadata_sha256")},
                       "content": content,
                       "start": fileio.file_sha256(weights) if weights else None})


@one_training
def _fit_from_weights(spec, task, hparams, weights_file, *, profile, strategy, callbacks,
                      targets, keep=None):
    """tune.fit_member's fine-tuning path, but the classifier (module and head) starts from a
    candidate's fine-tuned weights (`weights_file`, a candidate's weights.weights.h5) instead
    of the pre-trained module with a zero head; weight decay then pulls towards those
    weights. With `keep` (a `memberkeep.KeptMember`) its training is kept and reused as
    fit_member's `keep` says. Returns the trained Classifier; raises TrialFailed as
    fit_member does and RunError when the weights cannot be loaded into the module."""
    from hubensemble._tf import keras, tensorflow as tf

    from hubensemble import tune

    strategy = strategy or tf.distribute.get_strategy()
    keras.backend.clear_session()
    keras.utils.set_random_seed(hparams.seed)
    tune.train.say_phase(callbacks, "load")
    with strategy.scope():
        model = tune.build_classifier(spec, task.num_classes, dropout=hparams.dropout,
                                      batchnorm=hparams.batchnorm)
        try:
            model.load_weights(weights_file)
        except Exception as e:  # noqa: BLE001 - h5py and Keras raise many types
            raise RunError(f"the student cannot start from {weights_file}: "
                           f"{type(e).__name__}: {e}; use "
                           + option_word("--distill-init module", "init='module'")) from e
        # compile_classifier snapshots the loaded weights as weight decay's origin.
        tune.compile_classifier(model, hparams)
    if keep is None:
        return tune.train_classifier(model, task, spec, hparams, profile=profile,
                                     callbacks=list(callbacks), targets=targets)
    from hubensemble.tune import memberkeep

    key = memberkeep.member_key(keep, spec, task, hparams, profile=profile, splits=("train",),
                                head_l2=None, model=model, strategy=strategy)
    try:
        if memberkeep.take_member(keep, key, model, hparams.steps, callbacks):
            return model
    except memberkeep.TrainedUnreadable as e:  # the model may hold part of them: start again
        log.info("%s: %s; it trains again", keep.what, e)
        return _fit_from_weights(spec, task, hparams, weights_file, profile=profile,
                                 strategy=strategy, callbacks=callbacks, targets=targets,
                                 keep=keep)  # (removed: it trains, and is kept again)
    return tune.train_classifier(
        model, task, spec, hparams, profile=profile, targets=targets,
        callbacks=[memberkeep.MemberClock(keep), *callbacks],  # first, as fit_member's
        on_trained=lambda: memberkeep.keep_member(keep, key, model))


def _teacher_export(run, meta, ens) -> tuple[str, list[str]]:
    """(the export folder of this ensemble, the trials its metadata lists as members): of
    run.json's export record and RUN/export, one of this ensemble (`Run.current_export`).
    RunError naming `hubensemble export` when it is missing or holds other members, and
    naming the members it left out (`--skip-missing`) when it is not the whole ensemble: the
    student would learn from fewer members than the ensemble it is compared with (a
    new-user check: a 1-member teacher, scored against both), or TensorFlow cannot load it
    (`formats.unloadable_path`: a folder name that is not UTF-8, a '[')."""
    current, stale = run.current_export(meta)
    path = current or stale or run.exported_to(meta) or str(run.export)
    command = run.export_words(path)
    verb = call_verb()
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise RunError(f"distill's teacher is the exported ensemble, and {path} holds no "
                       f"SavedModel: {verb} {command} first")
    if why := unloadable_path(path):  # its load, after the data and the costs: refused now
        raise RunError(f"distill's teacher cannot be loaded: {why}")
    info = read_export_metadata(path)
    exported = [m.get("trial") for m in info.get("members") or []]
    chosen = [m.get("trial") for m in ens.get("members") or []]
    skipped = [s for s in info.get("skipped") or [] if isinstance(s, dict)]
    if skipped:
        from hubensemble.sweepwords import ensemble_words  # its settings, not defaults

        skip = option_word("--skip-missing", "skip_missing=True")
        left = "; ".join(f"{s.get('trial')} ({s.get('reason')})" for s in skipped)
        raise RunError(f"the export at {path} left out {len(skipped)} of ensemble.json's "
                       f"{len(chosen)} members ({skip}): {left}. distill's teacher "
                       f"must be the whole ensemble it is compared with: "
                       f"{run_words('tune', run.path)} again for them, then {command} without "
                       f"{skip} (or {ensemble_words(run.path)} to choose among the "
                       "complete candidates, then export)")
    if export_members_differ(info, ens.get("members")):  # other members, or other weights
        raise RunError(f"the export at {path} holds members {exported} (with their weights), "
                       f"but ensemble.json chose {chosen}"
                       f"{' with other weights' if set(exported) == set(chosen) else ''}: run "
                       f"{command} again so the teacher is this ensemble")
    return absolute(path), exported
