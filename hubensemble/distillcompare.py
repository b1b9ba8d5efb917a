"""distill's comparison: the student against the best single member and the ensemble on the
test split (`DistillResult`, RUN/distill.json), McNemar's paired test of the ensemble's gain
(`paired_gap`), and the summary table `hubensemble distill` prints (`format_distill`).

Split from `hubensemble.distill` (which trains the student and re-exports these names) so that
each stays a size one can read.
"""

from __future__ import annotations

import dataclasses
import os

from hubensemble import fileio, metrics
from hubensemble.cost.records import figure
from hubensemble.errors import RunError
from hubensemble.formats import read_export_metadata
from hubensemble.lockwords import option_word
from hubensemble.text import absolute, cells, ljust


#: McNemar's z (two-sided 5 %) from which the ensemble's test gain over the best single member
#: is significant (`paired_gap`); below it a share of that gain is not measurable.
Z_SIGNIFICANT = 1.96


@dataclasses.dataclass
class DistillResult:
    """What `run_distill` wrote to RUN/distill.json.

    `student`: {"trial", "module", "path" (relative to the run), "hparams", "steps",
    "seconds", "init" ("member" or "module"), "init_from" (the candidate whose weights it
    started from, or None), "val" and "test" ({accuracy, nll, ece}; test None without a
    test split),
    "cost" (its `Cost` summary: gflops, params, latency_ms, size)}; `best_single` and
    `ensemble`: the same metrics and costs from ensemble.json (test None without test
    labels), or, when the teacher was retrained on train + val, the export's own run on the
    test split (`retrained_test`; the best single's only when the export can run it), with
    "retrained" saying which; `teacher`: {"export", "members", "retrain_full"};
    `gap_closed`: (student - best single) / (ensemble - best single) test accuracy, the
    share of the ensemble's gain the student keeps (None when the ensemble is not better
    than the best single member, there is no test split, or only the ensemble's figures are
    of the retrained export); `cost_ratio`: the ensemble's GFLOPs / the student's; `gap`:
    that gap in test images with McNemar's z (`paired_gap` or `mcnemar`; None without test
    tables). When the gap is not significant, `gap_closed` is a share of noise; when `gap`
    is None with a test split, `gap_note` says why its significance cannot be decided (or
    why a retrained export's best single has no paired test), and no share is shown.
    `students`: every student folder in RUN/distill/ (`student_records`: this one and those
    of other modules, kept), and `replaced`: the same record of the earlier student of this
    module that this one replaced (its folder is gone; its options can train it again), or None.
    `report`: the run's report (ReportPaths) when `run_distill` wrote it again, else None
    (not in distill.json).
    """

    student: dict
    best_single: dict
    ensemble: dict
    teacher: dict
    gap_closed: float | None
    cost_ratio: float | None
    gap: dict | None = None
    gap_note: str | None = None
    students: list = dataclasses.field(default_factory=list)
    replaced: dict | None = None
    report: tuple | None = dataclasses.field(default=None, compare=False)

    def to_json(self) -> dict:
        """Exactly what RUN/distill.json holds (not `report`)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "report"}


#: run_distill's keywords whose field in a student's record (its trial.json) is another: "init"
#: there is the start kept ("member" / "module"), "init_rule" the option as given.
_RECORD_FIELDS = {"init": "init_rule"}


def distilled_with(record) -> tuple[str, str]:
    """(flags, keywords): the options of `run_distill` that the student of `record` (its
    trial.json, as distill writes it) was distilled with, where not at their default, as the
    command line types them ("--distill-init member --distill-steps 0.05") and as Python
    passes them ("init='member', steps_scale=0.05"), to distil it again by the same rule;
    ("", "") when all are at their defaults. The options are the options table's rows of
    run_distill (`options.options_for(used_by="distill")`: flag, keyword, default, rule)
    whose value the record holds: its field of the keyword's name ("init_rule" for init;
    "train_batch_size", null when not given). A record written before distill recorded the
    training batch is read as before: the batch the student trained at (its "hparams"
    batch_size) when that is not its profile's ("profile"), which missed a batch given equal
    to the profile's where tune trained at another. --student and
    --max-gflops pick the module, which the caller names. A field missing (a record written
    before it) or not of the option's rule (edited by hand) is left out. In the order of the
    flags' names, so one command reads the same wherever it is said."""
    from hubensemble import options
    from hubensemble.text import shell_word

    named, defaults = [], options.defaults_for("distill")
    for o in options.options_for(used_by="distill"):
        value = _recorded(record, o.kw) if isinstance(record, dict) else None
        try:
            options.check(o.name, value)
        except options.OptionError:
            continue
        if value is not None and value != defaults[o.kw]:
            named.append((o.settings("distill")["flags"][0], o.kw, value))
    named.sort()
    return (" ".join(f"{flag} {shell_word(str(value))}" for flag, _, value in named),
            ", ".join(f"{kw}={value!r}" for _, kw, value in named))


def _recorded(record: dict, keyword: str):
    """The value of run_distill's `keyword` a student's `record` holds, or None; a record
    without "train_batch_size" (before it was recorded) by its batch against its profile's."""
    field = _RECORD_FIELDS.get(keyword, keyword)
    if field in record or keyword != "train_batch_size":
        return record.get(field)
    from hubensemble.hyperrule import PROFILES

    hparams, profile = record.get("hparams"), PROFILES.get(record.get("profile"))
    batch = hparams.get("batch_size") if isinstance(hparams, dict) else None
    return None if profile is None or batch == profile.batch_size else batch


def _describe(s) -> str:
    """One student record as the replacement note and the summary name it."""
    test = (s.get("test") or {}).get("accuracy")
    val = (s.get("val") or {}).get("accuracy")
    # In the caller's words: run_distill's keywords from Python (lockwords.option_word).
    init, steps, mixup, lr = (option_word(f, k) for f, k in (
        ("--distill-init", "init"), ("--distill-steps", "steps_scale"),
        ("--distill-mixup", "mixup"), ("--distill-lr", "lr_scale")))
    return (f"test accuracy {_num(test)}, val {_num(val)}; {init} {s.get('init_rule')}"
            f" (kept {s.get('init')}), {steps} {_num(s.get('steps_scale'), 'g')}, "
            f"{mixup} {_num(s.get('mixup'), 'g')}, {lr} {_num(s.get('lr_scale'), 'g')}")


def paired_gap(ens, cands, single_trial, student_probs, labels) -> dict | None:
    """The best single member -> ensemble test-accuracy gap counted in images, with McNemar's
    paired test (McNemar, 1947) on the same images.

    `ens`: ensemble.json (members with "trial" and "weight"); `cands`: candidates with
    test_probs float32 [N, C] loaded; `student_probs` float [N, C]; `labels` int [N]. The
    ensemble's probabilities are its members' test tables averaged with their weights.
    Returns `mcnemar`'s counts; None when a table is missing.
    """
    import numpy as np

    by_trial = {c.trial: c for c in cands}
    members = [(by_trial.get(m.get("trial")), float(m.get("weight") or 0.0))
               for m in ens.get("members") or []]
    single = by_trial.get(single_trial)
    tables = [c.test_probs if c is not None else None for c, _ in members]
    if (single is None or single.test_probs is None or not members
            or any(t is None for t in tables) or student_probs is None):
        return None
    total = sum(w for _, w in members) or 1.0
    ensemble = sum(np.asarray(t, np.float64) * w for t, (_, w) in zip(tables, members))
    return mcnemar(single.test_probs, ensemble / total, student_probs, labels)


def mcnemar(single_probs, ensemble_probs, student_probs, labels) -> dict:
    """McNemar's paired counts of the best single member against the ensemble on the same
    images: `single_probs`, `ensemble_probs` and `student_probs` float [N, C] (argmax is the
    prediction), `labels` int [N].

    Returns {"n", "images" (ensemble - single, correct images), "single_only" and
    "ensemble_only" (images only one of them gets right), "z" = (ensemble_only -
    single_only) / sqrt(their sum) (0 when both are 0), "significant" (z >= Z_SIGNIFICANT),
    "student_images" (student - single)}.
    """
    import numpy as np

    labels = np.asarray(labels)
    right_single = np.argmax(single_probs, 1) == labels
    right_ens = np.argmax(ensemble_probs, 1) == labels
    right_student = np.argmax(student_probs, 1) == labels
    b = int(np.sum(right_single & ~right_ens))
    c = int(np.sum(~right_single & right_ens))
    z = float((c - b) / np.sqrt(b + c)) if b + c else 0.0
    return {"n": int(len(labels)), "images": c - b, "single_only": b, "ensemble_only": c,
            "z": z, "significant": z >= Z_SIGNIFICANT,
            "student_images": int(right_student.sum() - right_single.sum())}


#: How far the retrained export's test figures, measured by running it (`retrained_test`),
#: may be from the record export --retrain-full wrote (metadata metrics.test): the same
#: members on the same images, only batched otherwise (float32 rounding, ~1e-7), so anything
#: larger means another split or another model than the export measured.
RECORD_TOLERANCE = 1e-5


def retrained_test(loaded, export_dir, task, *, run_dir, batch_size: int = 64,
                   note=None) -> dict | None:
    """The test split's per-image probabilities of a teacher export whose members were
    retrained on train + val (`export --retrain-full`), from running it: the retrained
    members' own test tables are not kept, and their figures before retraining
    (ensemble.json's) are of other models. None when the export was not retrained or `task`
    (the run's data, as fit loaded it) has no test split.

    `loaded`: the export loaded by `tf.saved_model.load(export_dir)`. Each image goes in at
    its decoded size, as [0, 1] floats (`evaluate.size_batches`); the export resizes it for
    each member as tune's prediction did. `note`: None, or a function called with (images
    done, images in all) after each batch (`terminal.counting_note`: distill's bar says it:
    the check of a real teacher took minutes before the bar appeared). Returns {"labels"
    int [N], "ensemble" float32 [N, C] (`serve_members`' "probabilities", else
    serving_default's), "members" float32 [N, M, C] or None, "trials" (the metadata's
    members, in that order), "members_missing" (why the members cannot be run one by one,
    ending in `_export_again`'s command; or None), "recorded" (metadata metrics.test when
    export measured it on the retrained members, else None)}.

    Raises RunError, ending in the command that exports the run (`run_dir`) again
    (`_export_again`: with --retrain-full as it was), when the serving_default signature of
    any teacher, retrained or not, lacks an input or output distill reads (naming the
    signature: `evaluate._signature_caller`); of a retrained one, when its classes are not
    the task's, when its serve_members lacks one, or when its figures on this split are not
    the test record it wrote (beyond RECORD_TOLERANCE): the data or the export changed
    since, and a comparison with it would be of something else.
    """
    import numpy as np
    from hubensemble._tf import tensorflow as tf

    from hubensemble.evaluate import _signature_caller, _with_members, size_batches
    from hubensemble.formats import MEMBERS_SIGNATURE, SERVING_SIGNATURE

    meta = read_export_metadata(export_dir)
    way = _export_again(run_dir, export_dir, bool(meta.get("retrain_full")))
    # Every teacher's serving_default, which distill's targets read: a KeyError came of one
    # without it, or of its "probabilities" (an export edited or of another maker).
    if SERVING_SIGNATURE not in loaded.signatures:
        raise RunError(f"the teacher export at {export_dir} has no {SERVING_SIGNATURE} "
                       f"signature (it has {sorted(loaded.signatures) or 'none'}); {way}")
    # Each refusal names the signature and the way on (they said "the signature returns
    # [...]" alone), as evaluate's of the same calls.
    serve = _signature_caller(loaded.signatures[SERVING_SIGNATURE], "probabilities",
                              who=f"the teacher export {export_dir}'s {SERVING_SIGNATURE} "
                              "signature", way=f"; {way}")
    if not meta.get("retrain_full") or task.test is None:
        return None
    names = list(meta.get("class_names") or [])
    if names and names != list(task.class_names):
        raise RunError(f"the teacher export at {export_dir} predicts the classes {names}, the "
                       f"run's data has {list(task.class_names)}: {way}")
    data, n_classes = task.test, task.num_classes
    trials = [str(m.get("trial")) for m in meta.get("members") or []]
    call, missing = None, None
    if MEMBERS_SIGNATURE in loaded.signatures:
        call = _with_members(loaded.signatures[MEMBERS_SIGNATURE], serve,
                             who=f"the teacher export {export_dir}'s {MEMBERS_SIGNATURE} "
                             "signature", way=f"; {way}")
    else:
        missing = (f"the export has no {MEMBERS_SIGNATURE} signature, so its members cannot "
                   f"be run one by one ({way})")
    labels = np.asarray(data.labels, np.int64)
    ensemble = np.zeros((len(labels), n_classes), np.float32)
    members = None if call is None else np.zeros((len(labels), len(trials), n_classes),
                                                 np.float32)
    done = 0
    for idx in size_batches(data.shapes(), batch_size):
        x = tf.constant(np.stack([data.images[i] for i in idx]).astype(np.float32)
                        / np.float32(255))
        if call is None:
            ensemble[idx] = serve(x)
        else:
            ensemble[idx], members[idx] = call(x)
        done += len(idx)
        if note is not None:
            note(done, len(labels))
    record = meta.get("metrics") or {}
    # Without test_before_retraining, metrics.test is ensemble.json's (an export retrained
    # before export measured its members): nothing of the retrained members to check against.
    recorded = record.get("test") if "test_before_retraining" in record else None
    result = {"labels": labels, "ensemble": ensemble, "members": members, "trials": trials,
              "members_missing": missing, "recorded": recorded}
    _check_record(result, export_dir, run_dir)
    return result


def _export_again(run_dir, export_dir, retrain_full: bool = True) -> str:
    """"export the run again with `hubensemble export --run RUN --retrain-full`" (--out
    EXPORT when `export_dir` is not RUN/export; --retrain-full as the teacher was exported,
    `retrain_full`), or from Python "… with export_ensemble(run_dir=…, retrain_full=True)"
    (`Run.export_words`): the way on from a teacher export that distill cannot run or
    compare with (`retrained_test`). It said "export the run again" and "--retrain-full"
    with no command."""
    from hubensemble.rundir import Run

    return ("export the run again with "
            + Run(run_dir).export_words(export_dir,
                                        flags="--retrain-full" if retrain_full else "",
                                        keywords="retrain_full=True" if retrain_full else ""))


def _check_record(teacher, export_dir, run_dir) -> None:
    """RunError unless the ensemble's (and each run member's) metrics from `teacher`
    (`retrained_test`) are the export's recorded test figures, within RECORD_TOLERANCE; its
    words name --retrain-full on the command line, retrain_full=True from Python (no command
    it cannot paste: `hubensemble export --retrain-full` had no --run),
    and end in the command that exports the run `run_dir` again (`_export_again`)."""
    recorded = teacher["recorded"]
    if not recorded:
        return
    y = teacher["labels"]
    pairs = [("ensemble", teacher["ensemble"], recorded.get("ensemble"))]
    if teacher["members"] is not None:
        by_trial = {m.get("trial"): m for m in recorded.get("members") or []}
        pairs += [(f"member {t}", teacher["members"][:, i], by_trial.get(t))
                  for i, t in enumerate(teacher["trials"])]
    for what, probs, want in pairs:
        if not want:
            continue
        got = metrics.metrics(probs, y)
        if any(abs(got[k] - want[k]) > RECORD_TOLERANCE for k in got if k in want):
            # In the caller's words: a Python caller never typed --retrain-full. Not a
            # command in backquotes: `hubensemble export --retrain-full` (no --run) and
            # export_ensemble(..., retrain_full=True) could not be pasted; the way on can.
            measured = option_word("--retrain-full", "retrain_full=True")
            raise RunError(
                f"the teacher export at {export_dir}, run on the run's test split "
                f"({len(y)} images), gives its {what} accuracy {got['accuracy']:.6f}, NLL "
                f"{got['nll']:.6f}, where its metadata records {_num(want.get('accuracy'), 6)}, "
                f"{_num(want.get('nll'), 6)} (metrics.test, measured when it was exported with "
                f"{measured}): the data or the export changed since; "
                f"{_export_again(run_dir, export_dir)}")


def ensemble_cost(ens, costs, cands, run, modules=None) -> dict | None:
    """The ensemble's cost (`records.total_cost`'s dict): ensemble.json's (`ens`) "cost"
    record, else, for an ensemble.json written before RUN/cost.json existed, its members'
    `costs` ({trial: Cost}) totalled by the rule that record follows (`budget.shared_total`:
    probes of one module that share a frozen backbone, `sharing.candidate_key` of the
    candidates `cands` with the catalogue entries of `run` (a `rundir.Run`; `modules`: its
    run.json "modules" as already read), count it once, as the export runs it). None when a
    member has no cost. Their plain sum counted a shared backbone once per member: 0.0152
    GFLOPs and 1,864 parameters for an ensemble of 0.0147 and 1,416, and the student's cost
    ratio over by as much. RunError (`runspecs.checked_entries`' words) when a member's
    entry is damaged: it counted as sharing no backbone."""
    recorded = (ens.get("cost") or {}).get("ensemble")
    if recorded is not None:
        return recorded
    from hubensemble.cost.budget import shared_total
    from hubensemble.cost.sharing import candidate_key
    from hubensemble.runspecs import checked_entries

    trials = [m.get("trial") for m in ens.get("members") or []]
    if not trials or any(t not in costs for t in trials):
        return None
    by_trial = {c.trial: c for c in cands}
    specs = checked_entries(run, {by_trial[t].module for t in trials if t in by_trial},
                            modules)
    keys = {t: candidate_key(by_trial[t], specs, costs[t]) for t in trials if t in by_trial}
    return shared_total(costs, trials, keys)


def cost_ratio(ens_cost: dict | None, student_cost) -> float | None:
    """How many times the student's GFLOPs the ensemble's are (> 0), or None when either is
    not counted (`Cost.macs` None: TensorFlow could not freeze a module, docs/cost.md) or the
    student's is 0. `ens_cost` is `ensemble_cost`'s summary (its "gflops" None when a member's
    are not counted); `student_cost` a `Cost`."""
    ens_gflops = (ens_cost or {}).get("gflops")
    if ens_gflops is None or not student_cost.gflops:
        return None
    return ens_gflops / student_cost.gflops


def _compare(run, ens, record, written, probs, task, student_cost, costs,
             cands, teacher_test=None) -> DistillResult:
    """The DistillResult of a trained student against the best single member and the ensemble
    (test metrics and costs): ensemble.json's, or with `teacher_test` (`retrained_test`: a
    teacher retrained on train + val) the export's own, run on the test split, for the
    ensemble and for the best single when the export can run it (a member, with
    serve_members); a best single it cannot run keeps ensemble.json's row, before retraining
    ("retrained" False), with no paired test and no share (`gap_note` says why)."""
    test = ens.get("test") or {}
    ens_cost = ensemble_cost(ens, costs, cands, run)  # (a damaged entry: refused before)
    single = test.get("best_single") or {}
    single_trial = single.get("trial") or (ens.get("val") or {}).get("best_single", {}).get(
        "trial")
    single_cost = costs.get(single_trial)
    student_test = (metrics.metrics(probs["test"], task.test.labels)
                    if "test" in probs else None)
    single_test = {k: single[k] for k in ("accuracy", "nll", "ece") if k in single} or None
    ens_test = test.get("ensemble")
    retrained = {"best_single": False, "ensemble": False}
    paired, note = None, None
    if teacher_test is not None:
        # The teacher's members were retrained: ensemble.json's figures are of other models.
        y, ens_probs = teacher_test["labels"], teacher_test["ensemble"]
        ens_test = metrics.metrics(ens_probs, y)
        retrained["ensemble"] = True
        trials = teacher_test["trials"]
        if teacher_test["members"] is not None and single_trial in trials:
            single_probs = teacher_test["members"][:, trials.index(single_trial)]
            single_test = metrics.metrics(single_probs, y)
            retrained["best_single"] = True
            paired = mcnemar(single_probs, ens_probs, probs["test"], y)
        else:
            note = (f"the best single row is {single_trial} before retraining (ensemble.json's): "
                    + (teacher_test["members_missing"] or "it is no member of the export, so "
                       "it was not retrained and the export cannot run it"))
    elif "test" in probs:
        paired = paired_gap(ens, cands, single_trial, probs["test"], task.test.labels)
        if paired is None:
            have = {c.trial for c in cands if c.test_probs is not None}
            lacking = [t for t in [single_trial] + [m.get("trial")
                                                    for m in ens.get("members") or []]
                       if t not in have]
            note = ("McNemar's test needs the test table of every member and of the best "
                    "single, and RUN/candidates has none usable for "
                    f"{', '.join(dict.fromkeys(lacking))} (an incomplete or missing candidate)")
    gap = None
    # A share of the gain between a retrained ensemble and a best single before retraining
    # would measure the retraining too: none is given.
    if (student_test and ens_test and single_test and single_test.get("accuracy") is not None
            and retrained["best_single"] == retrained["ensemble"]):
        lift = ens_test["accuracy"] - single_test["accuracy"]
        if lift > 0:
            gap = (student_test["accuracy"] - single_test["accuracy"]) / lift
    ratio = cost_ratio(ens_cost, student_cost)
    return DistillResult(
        student={"trial": record["trial"], "module": record["module"],
                 "path": os.path.relpath(written.folder, run.path),
                 "hparams": record["hparams"], "steps": record["steps"],
                 "init": record["init"], "init_from": record["init_from"],
                 "seconds": record["seconds"],
                 "val": metrics.metrics(probs["val"], task.val.labels), "test": student_test,
                 "cost": student_cost.summary()},
        best_single={"trial": single_trial, "test": single_test,
                     "cost": single_cost.summary() if single_cost else None,
                     "retrained": retrained["best_single"]},
        ensemble={"members": [m["trial"] for m in ens.get("members") or []],
                  "test": ens_test, "cost": ens_cost, "retrained": retrained["ensemble"]},
        teacher=record["teacher"], gap_closed=gap, cost_ratio=ratio, gap=paired, gap_note=note)


def read_distill(run_dir) -> dict | None:
    """RUN/distill.json as a dict, or None when there is none (or it is unreadable)."""
    from hubensemble.formats import DISTILL_FILE

    try:
        data = fileio.read_json(os.path.join(os.fspath(run_dir), DISTILL_FILE))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _significance(gap) -> str:
    """What McNemar's z of `paired_gap` says, for the gap line ("" when the gain is real)."""
    if gap["significant"]:
        return ""
    if not gap.get("single_only") and not gap.get("ensemble_only"):
        # No image only one of them gets right (a one-member ensemble is its best single):
        # there is no gain, not a gain that is noise.
        return (", the ensemble and the best single member are right on the same images: no "
                "gain to keep")
    if gap["z"] <= -Z_SIGNIFICANT:  # the ensemble loses: there is no gain to keep
        return (f", significantly below the best single at z <= -{Z_SIGNIFICANT}: no gain "
                "to keep")
    return f", not significant at |z| < {Z_SIGNIFICANT}: the share is noise"


def format_distill(result, run_dir=None) -> str:
    """The `distill` summary: test accuracy, NLL, ECE and cost of the student, the best
    single member and the ensemble, and the share of the ensemble's gain the student kept.
    With `run_dir` (the run of `result`), its student folders are named absolute, from any
    working folder (they are relative to the run in distill.json: "distill/distill-small",
    which `distill --run runs/a` printed as if it were in the working folder). A teacher
    retrained on train + val is said as the caller sets it (`lockwords.option_word`)."""
    r = result.to_json() if isinstance(result, DistillResult) else dict(result)
    # A teacher retrained on train + val (--retrain-full): each row says whether its figures
    # are of the retrained export or of ensemble.json's members before retraining.
    teacher = r.get("teacher") or {}
    retrain = teacher.get("retrain_full")
    if retrain is None and teacher.get("export"):  # a distill.json from before it was kept
        retrain = read_export_metadata(teacher["export"], strict=False).get("retrain_full")
    single_new = bool(r["best_single"].get("retrained"))
    ens_new = bool(r["ensemble"].get("retrained"))

    def label(new):
        return "" if not retrain else (", retrained on train + val" if new
                                       else ", before retraining")

    rows = [(f"student ({r['student']['module']})", r["student"]["test"],
             r["student"]["cost"]),
            (f"best single ({r['best_single']['trial']}){label(single_new)}",
             r["best_single"]["test"], r["best_single"]["cost"]),
            (f"ensemble ({_members(len(r['ensemble']['members']))}){label(ens_new)}",
             r["ensemble"]["test"], r["ensemble"]["cost"])]
    width = max(cells(name) for name, _, _ in rows) + 2
    lines = [f"{'test set':<{width}}{'accuracy':>10}{'NLL':>9}{'ECE':>9}{'GFLOPs':>10}"
             f" {'ms@1':>8}"]
    for name, m, c in rows:
        m = m or {}
        c = c or {}
        ms = (c.get("latency_ms") or {}).get("1")
        lines.append(f"{ljust(name, width)}{_num(m.get('accuracy')):>10}{_num(m.get('nll')):>9}"
                     f"{_num(m.get('ece')):>9}{figure(c.get('gflops'), 4):>10}"
                     f" {figure(ms):>8}")
    for name, _, c in rows:  # "–" in the GFLOPs column: why, as `hubensemble cost` says it
        if (c or {}).get("gflops") is None and (c or {}).get("gflops_not_counted"):
            lines.append(f"GFLOPs not counted: {name}: {c['gflops_not_counted']}")
    if retrain:
        said = ("note: the teacher's members were retrained on train + val "
                f"({option_word('--retrain-full', 'retrain_full=True')}); ")
        export = "the export's, run on the test split"
        if single_new and ens_new:
            lines.append(said + f"the best single and ensemble rows, and the gain below, are "
                         f"{export}")
        elif ens_new:
            lines.append(said + f"the ensemble row is {export}; the best single row is of its "
                         "candidate before retraining (ensemble.json's)")
        else:
            lines.append(said + "the best single and ensemble rows, and the gain below, are of "
                         "the members before retraining (ensemble.json's)")
    g = r.get("gap")
    # A share of a gain that McNemar's test cannot tell from noise is noise itself (e.g. -133 %
    # of a 3-image gap): only the gap line below is printed then; nor is a share whose
    # significance cannot be decided (no gap), which says why instead.
    if r.get("gap_closed") is not None and g and g.get("significant"):
        lines.append(f"the student keeps {r['gap_closed']:.0%} of the ensemble's test-accuracy "
                     "gain over the best single member"
                     + (f", at 1/{r['cost_ratio']:.1f} of its GFLOPs"
                        if r.get("cost_ratio") else ""))
    if g:
        lines.append(f"the gain is {g['images']} of {g['n']} test images (only the best single "
                     f"right on {g['single_only']}, only the ensemble on {g['ensemble_only']}: "
                     f"McNemar z = {g['z']:.2f}" + _significance(g)
                     + f"); the student gets {g['student_images']:+d} images vs the best single")
    elif r.get("gap_closed") is not None:
        lines.append("no share of the ensemble's test-accuracy gain: whether the gain is "
                     "significant cannot be decided ("
                     + (r.get("gap_note") or "no paired test-image counts were recorded") + ")")
    elif retrain and ens_new and not single_new and r.get("gap_note"):
        lines.append("no share of the ensemble's test-accuracy gain and no paired test of it ("
                     + r["gap_note"] + ")")

    def folder(path):
        return absolute(os.path.join(run_dir, path)) if run_dir is not None else path

    start = r["student"].get("init_from")
    lines.append(f"student: {folder(r['student']['path'])} ({r['student']['steps']} steps, "
                 f"{r['student']['seconds']:.0f} s, started from "
                 f"{'candidate ' + start if start else 'the pre-trained module'})")
    others = [s for s in r.get("students") or [] if s.get("trial") != r["student"]["trial"]]
    teacher = (r.get("teacher") or {}).get("members")
    for s in others:  # students of other modules stay in RUN/distill/: say which they are
        lines.append(f"also kept: {folder(s['path'])} ({_describe(s)}"
                     + ("; of an earlier ensemble" if s.get("teacher_members") != teacher else "")
                     + ")")
    return "\n".join(lines)


def _members(n: int) -> str:
    return f"{n} member" + ("" if n == 1 else "s")


def _num(value, digits=4) -> str:
    """`value` with `digits` decimals (or a format spec such as "g"); "–" for None."""
    spec = digits if isinstance(digits, str) else f".{digits}f"
    return "–" if value is None else f"{float(value):{spec}}"
