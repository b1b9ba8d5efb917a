"""Robustness evaluation: an export on the clean test split and on seeded, corrupted copies."""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
import time
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from hubensemble import metrics, options, predictloaded
from hubensemble.lockwords import option_word
from hubensemble.errors import DataError, HubensembleError, RunError
from hubensemble.rundir import Run
from hubensemble.terminal import progress_bar, say
from hubensemble.text import absolute, counted, described, names_listed, value_shown
from hubensemble.datachange import metadata_spec  # noqa: F401 (its home; evaluate's too)
from hubensemble.data.coverage import few_note, majority_note, unbalanced
from hubensemble.heldout import (changed_files, changed_files_note, not_held_out,
                                 not_held_out_note)
# The corruptions (corruptions.py), re-exported for the callers that import them from here.
from hubensemble.corruptions import (ALIGNMENT, CORRUPTIONS, DEFAULT_CORRUPTIONS,  # noqa
                                     MIN_BLUR_SIGMA, aligned_empty, PARAMETERS, RANDOM_CORRUPTIONS,
                                     REFERENCE_SIDE, SEVERITIES, _check_severities, _corrupt,
                                     blur_sigma, describe_corruptions, get_corruption,
                                     gaussian_kernel, resolve_corruptions, shared_tensor)
# The file names, the one reader of export metadata and of evaluations (TensorFlow-free),
# re-exported here for the callers that import them from this module.
from hubensemble.formats import (MEMBERS_SIGNATURE, METADATA_ASSET,  # noqa: F401
                                 ROBUSTNESS_FILE, SERVING_SIGNATURE, check_metadata_fits,
                                 check_saved_model_folder, export_command, export_identity,
                                 load_saved_model, metadata_path, read_evaluation,
                                 read_export_metadata)
from hubensemble.exportfolder import task_record
from hubensemble.kerasenv import with_stage_settings
from hubensemble.classmatch import class_index
from hubensemble.evaluationtime import (LONG_EVALUATION_S, evaluation_estimate,  # noqa: F401
                                        long_evaluation_note, passes_words)
# The terminal's table of a result (its words), re-exported for the callers that import it here.
from hubensemble.evaluationtext import EXPORT_AGAIN as _EXPORT_AGAIN
from hubensemble.evaluationtext import format_evaluation  # noqa: F401
# What evaluate takes as --model, and the way on from a folder it cannot use (predict's too).
from hubensemble.prediction import EVALUATE_TAKES, model_way_on  # noqa: F401
# The task evaluate scores (a data spec or the run's own data), re-exported for its callers.
from hubensemble.evaluationtask import (_evaluation_task, check_evaluation_data,  # noqa: F401
                                        load_evaluation_task, parse_scored_split,
                                        scored_only, scored_part)
# Where the result is written (--out), re-exported for the callers that import it from here.
from hubensemble.evaluateout import (_RUN_EXPORT_FOLDERS, _check_outside_export,  # noqa: F401
                                     check_evaluation_target, write_evaluation)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Evaluating an export
# ---------------------------------------------------------------------------------------------

def _signature_caller(signature, *output_keys, who: str = "the signature", way: str = ""):
    """images -> the signature's `output_keys` outputs as numpy arrays (one array for one
    key, else a tuple in that order). RunError, naming the signature as `who` and ending
    in `way` ("; " and the way on, `model_way_on`), when it takes other than one input or
    lacks an output key."""
    kwargs = signature.structured_input_signature[1]
    if len(kwargs) != 1:
        raise RunError(f"{who} takes {sorted(kwargs)}; expected one image input "
                       f"(images float32 [N, H, W, 3] in [0, 1]){way}")
    (name,) = kwargs
    outputs = signature.structured_outputs
    for key in output_keys:
        if key not in outputs:
            raise RunError(f"{who} returns {sorted(outputs)}, not {key!r}{way}")

    def call(images):
        out = signature(**{name: images})
        arrays = tuple(out[key].numpy() for key in output_keys)
        return arrays[0] if len(arrays) == 1 else arrays

    return call


def _as_tensor(images: np.ndarray):
    """float32 `images` as a tensor for the served model (`corruptions.shared_tensor`: no copy
    of an aligned array; the copy was one batch more at evaluate's peak, 64 phone photos at
    1365 x 1024: 1.07 GB)."""
    return shared_tensor(images)


def _with_members(members_signature, serve, *, who: str = "the signature", way: str = ""):
    """images -> (the ensemble's probabilities [N, C], its members' [N, M, C]): one call of
    serve_members when it returns both (the members run once), else `serve` and then
    serve_members (exports made before it returned both). `who` and `way` name it and the
    way on in `_signature_caller`'s RunError (they said "the signature returns [...]" alone)."""
    if "probabilities" in members_signature.structured_outputs:
        return _signature_caller(members_signature, "probabilities", "member_probabilities",
                                 who=who, way=way)
    members = _signature_caller(members_signature, "member_probabilities", who=who, way=way)
    return lambda images: (serve(images), members(images))


def size_batches(shapes, batch_size: int) -> list[np.ndarray]:
    """The batches evaluate feeds: `shapes` int [N, 2] (height, width per image) -> int64
    index arrays, each of at most `batch_size` (>= 1) images of ONE size, so every image
    goes to the model at its own decoded size, as predict and serve_bytes send it (a resize
    to a common size first would resize it twice). Sizes in ascending (height, width) order,
    indices ascending within a batch; every index 0..N-1 is in exactly one batch. A split of
    one size gives the plain batches [0, b), [b, 2b), ...; no images give []."""
    _, size = np.unique(np.asarray(shapes, np.int64).reshape(-1, 2), axis=0,
                        return_inverse=True)
    size = size.reshape(-1)  # the size number of each image
    groups = np.split(np.argsort(size, kind="stable"), np.cumsum(np.bincount(size))[:-1])
    return [g[i:i + batch_size] for g in groups for i in range(0, len(g), batch_size)]


def _mean_metrics(entries):
    keys = ("accuracy", "nll", "ece", "balanced_accuracy")
    return {k: float(np.mean([e[k] for e in entries])) for k in keys
            if all(k in e for e in entries)}


_EVALUATE = options.defaults_for("evaluate")

# robustness.json's "best_single_way" (evaluationtext owns it, which words it; the report
# imports it from here).
EXPORT_AGAIN = _EXPORT_AGAIN


def check_evaluate_options(split: str, corruptions, severities) -> tuple[list[str], list[int]]:
    """(corruption names, severities) that `evaluate_model` will use: `resolve_corruptions`
    and the severities (none without corruptions). No TensorFlow: the command line checks
    them before it loads. Raises OptionError (a HubensembleError) for a split name that is
    not train, val (validation, valid) or test (or a NAME=TFDS_SPLIT whose string is empty:
    `parse_scored_split`), an unknown corruption or severity; each naming the caller's word,
    as `options.check` does: the flag on the command line ("--severities: severity must be
    one of 1, 2, 3, got 4"), else the keyword. `corruptions` of another type than a bool,
    None, a str, a list or a tuple is one name, as fit reads it ("corruptions: unknown
    corruption 3; choose from …"), and `severities` that are no list or tuple of integers
    (no bool; numpy's are: numbers.Integral) are refused ("severities must be a list of
    integers among 1, 2, 3, got 3"): both failed with "'int' object is not iterable", and
    severities=[True] ran severity 1."""
    if not isinstance(corruptions, (bool, type(None), str, list, tuple)):
        corruptions = [corruptions]  # as pipeline.fit reads it: one name
    with _naming("eval_split"):
        parse_scored_split(split)
    with _naming("corruptions"):
        names = resolve_corruptions(corruptions)
    if names or severities is not None:  # None: fit's and the callers' "none needed"
        _check_type("severities", severities, isinstance(severities, (list, tuple)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in severities),
            f"a list of integers among {', '.join(map(str, SEVERITIES))}")
    with _naming("severities"):
        return names, (_check_severities(severities) if names else [])


def _check_type(name: str, value, ok: bool, what: str) -> None:
    """OptionError "`name` must be `what`, got VALUE" unless `ok`, naming option `name` as
    `options.check` does (its `evaluate` flag on the command line, else its keyword)."""
    if not ok:
        o = options.get(name)
        raise options.OptionError(f"{option_word(o.settings('evaluate')['flags'][0], o.kw)} "
                                  f"must be {what}, got {value_shown(value)}")


@contextlib.contextmanager
def _naming(option: str):
    """A HubensembleError raised inside, as an OptionError (a flag's value refused: on the
    command line a usage error in argparse's shape, `arguments.is_usage_error`; `--split tst`,
    a DataError, said a bare "hubensemble: error:") whose message is led by `option`'s
    `evaluate` flag (Option.settings) on the command line, its keyword from Python
    (`option_word`): `--severities 4` said "severity must be one of 1, 2, 3, got 4" without
    naming the flag."""
    try:
        yield
    except HubensembleError as e:
        o = options.get(option)
        raise options.OptionError(
            f"{option_word(o.settings('evaluate')['flags'][0], o.kw)}: {e}") from None


def _check_task_type(model_dir, task) -> None:
    """TypeError naming `evaluate_model`'s `task`, the type given and how to load one: a data
    spec passed as the task failed with "'list' object has no attribute 'labels'" (a
    new-user check)."""
    from hubensemble.data import Task

    if isinstance(task, Task):
        return
    spec = task if isinstance(task, str) else "SPEC"
    model = os.fspath(model_dir) if isinstance(model_dir, (str, os.PathLike)) else "MODEL"
    raise TypeError(f"evaluate_model() task must be a hubensemble.data.Task, got "
                    f"{described(task)}; for a data spec pass load_evaluation_task({model!r}, "
                    f"{spec!r}) (from hubensemble.evaluate), the data `evaluate --data` reads")


def _scored_split(task, split: str):
    """`task`'s Split `split`: DataError (`evaluationtask.scored_part`'s) when it has none,
    and naming the split, the task and its splits that have images when it has no image: an
    empty split (a Task made in Python; the loaders refuse them) loaded the SavedModel
    first."""
    data = scored_part(task, split)
    if not len(data):
        others = [f"{s} ({len(getattr(task, s))} images)" for s in task.present_splits()
                  if getattr(task, s) is not data and len(getattr(task, s))]
        raise DataError(f"the {split} split of task {task.name!r} ({task.source}) has no "
                        "images, so there is nothing to evaluate; " + (
                            f"pass one that has ({option_word('--split', 'split=…')}): "
                            f"{', '.join(others)}" if others else "no split of it has any"))
    return data


@with_stage_settings
def evaluate_model(model_dir, task, *, split: str = _EVALUATE["split"],
                   corruptions=_EVALUATE["corruptions"],
                   severities: Sequence[int] = _EVALUATE["severities"],
                   seed: int = _EVALUATE["seed"], batch_size: int = _EVALUATE["batch_size"],
                   progress: bool = True) -> dict:
    """Accuracy, NLL and ECE of an exported ensemble and its best single member on `task`'s
    `split`, clean and under each corruption x severity (the paper's 4.5 at the data's scale;
    corruptions after ImageNet-C, Hendrycks & Dietterich 2019).

    Metrics are `hubensemble.metrics`: accuracy in [0, 1], NLL = mean cross-entropy in nats
    (probabilities floored at metrics.PROB_FLOOR, as every stage), ECE in [0, 1] over 15
    equal-width bins (Guo et al., 2017).

    The ensemble is the export's `serving_default` (or the same `probabilities` from
    `serve_members`, which returns them beside the members': one call per batch); the best
    single member is its slice of `serve_members` (member_probabilities [N, M, C], members in
    the order of assets/hubensemble.json) at the asset's "best_single" trial. An export without
    `serve_members` (or without best_single among its members) is evaluated as an ensemble
    only; the result's "best_single_missing" says why, and "best_single_way" is EXPORT_AGAIN
    when an export written again gives the comparison (the report names the commands). Each
    image is fed, and corrupted, at its own decoded size (`size_batches`: batches of one
    size), as predict sends it. Scored
    images that trained or chose the export (its run's train and val images, by pixels) are
    counted in "not_held_out" and, on other data than the export's own, warned about
    (`heldout.not_held_out_note`: logged at WARNING; on its own data, whose test split holds
    copies of its train or val images, at INFO: `format_evaluation`'s table says it). On
    the folder the export was fit on,
    changed since (files added, removed or edited: its recorded split cannot be drawn, so
    every image is a test example), "data_changed" counts the files that differ and the
    scored images that trained or chose it, by name (`heldout.changed_files`), and a WARNING
    says so; refusing would be wrong, as new images may be scored on purpose.

    `corruptions`: True (DEFAULT_CORRUPTIONS), False (clean only), "all", or names; by
    default False, as `hubensemble evaluate` without --corruptions (the options table's
    evaluate default, `options.defaults_for`): the five default kinds x 3 severities are
    16x the clean split's work. With corruptions, each cell (clean, each corruption x
    severity) is recorded as it finishes (`evaluationcells`, keyed by the export's files, the
    data, split, seed and batch size): an evaluation interrupted part way resumes at the
    cells it had not finished, saying so (a WARNING), with the result an uninterrupted one
    gives.
    `severities`: a subset of SEVERITIES. `seed`: an integer >= 0 for the noise.
    The export loaded last in the process (by `predict` or here) is used again while it is
    unchanged (`predictloaded.kept`: a loop of calls loads it once; its memory, about its
    variables/ folder's size plus its graphs, is held until another export is loaded or
    `predictloaded.forget()`); every check below runs at each call all the same.
    Returns a JSON-able dict: {"split", "n", "clean": {"ensemble": {accuracy, nll, ece},
    "best_single": {...} | None} (each entry with "balanced_accuracy" too, in [0, 1], when
    the split's classes are unbalanced: "classes" "unbalanced", `data.coverage.unbalanced`),
    "corruptions": {name: {"1": {...}, ...}}, "mean_corrupted": {...} | None, "best_single",
    "parameters", ...} (docs/report.md lists every key); `write_evaluation` stores it as
    RUN/robustness.json.

    The task's classes are matched to the export's class names (its metadata) by NAME (NFC
    form), so a test set may order them differently or hold only some of them; the result's
    "classes" says how they were matched and which of the model's classes have no example
    ("absent"); its "task" "unscored" counts the examples of the data's other splits.

    Before the model loads, logs a WARNING when running its members on batches of
    `batch_size` images may need more memory than the process may use (`memory.say_memory`:
    the command line said it already, before TensorFlow; not inside a fit, whose note
    covered it).

    Raises OptionError (a HubensembleError), before anything loads, for a value the options
    table refuses (`options.check_keywords`, the command line's rule, in its keywords:
    "batch_size must be an integer >= 1, got 0"; the seed in [0, 2**32 - 1]);
    HubensembleError for an unknown corruption or a bad severity; RunError when `model_dir` is
    not a loadable SavedModel with a serving_default signature taking one image input, or when
    an output scored is not probabilities (NaN, logits: `metrics.probability_fault`, naming
    the image and the condition: `_check_scored`) or of another shape than its metadata says
    (`_shape_refusal`; each with the way on, `model_way_on`); DataError, before the model
    loads (its metadata read alone), when the task has a class the export does not name
    (naming it), when, without class names in the metadata, the class counts differ (after
    it loads when only its output shows its count: `_shape_refusal`); or when `task` has
    no `split` or, before anything loads, no image in it (`_scored_split`); TypeError,
    before anything loads, for a `task` that is not a Task (a data spec:
    `load_evaluation_task` reads it).

    Example::

        from hubensemble.data import load_task
        from hubensemble.evaluate import evaluate_model, format_evaluation

        result = evaluate_model("RUN/export", load_task("sklearn:digits"))
        print(format_evaluation(result))
    """
    options.check_keywords("evaluate", dict(  # the options table's rules, as the command line's
        split=split, corruptions=corruptions, severities=severities, seed=seed,
        batch_size=batch_size))
    names, sevs = check_evaluate_options(split, corruptions, severities)  # before any work
    from hubensemble import stageargs

    model_dir = stageargs.folder("evaluate_model", "model_dir", model_dir)
    if not Run(os.path.dirname(absolute(model_dir))).fit_here():  # (fit's note said its own)
        from hubensemble.memory import say_memory  # too little memory: before the model

        say_memory("evaluate", model_dir, {"batch_size": batch_size})
    _check_task_type(model_dir, task)
    split = parse_scored_split(split)[0]  # NAME of NAME=TFDS_SPLIT: the loader read that
    data = _scored_split(task, split)
    start_time = time.perf_counter()
    labels = np.asarray(data.labels, np.int64)
    sizes = data.shapes()

    # The classes, from the metadata (no TensorFlow), before the model loads: a test set of
    # a class the export does not know was refused only after TensorFlow and the SavedModel.
    # Metadata at odds with itself (class_names and num_classes of other counts) is checked
    # against the model first (`check_metadata_fits`): the data is not what is wrong there.
    meta = read_export_metadata(model_dir)
    _warn_damaged_task(model_dir, meta)
    model_names = list(meta.get("class_names") or [])
    n_classes = meta.get("num_classes") or len(model_names) or None
    early = not (model_names and isinstance(meta.get("num_classes"), int)
                 and meta["num_classes"] != len(model_names))
    to_model = _model_classes(model_names, n_classes, task) if early else None
    from hubensemble._tf import tensorflow  # noqa: F401  (imported before the model loads)

    # The export loaded last in this process when it is unchanged since, as predict's (a
    # caller's loop paid the load at each call): `predictloaded.kept`; every check below runs.
    loaded = predictloaded.kept(model_dir, meta, load_saved_model)
    way = f"; {model_way_on(model_dir, meta)}"
    if SERVING_SIGNATURE not in loaded.signatures:
        raise RunError(f"{model_dir} has no {SERVING_SIGNATURE} signature (it has "
                       f"{names_listed(loaded.signatures) or 'none'}){way}")
    serve = _signature_caller(loaded.signatures[SERVING_SIGNATURE], "probabilities",
                              who=f"{model_dir}'s {SERVING_SIGNATURE} signature", way=way)
    check_metadata_fits(meta, loaded.signatures[SERVING_SIGNATURE], model_dir)
    if to_model is None:
        to_model = _model_classes(model_names, n_classes, task)
    labels = to_model[labels]  # the task's labels in the model's class index space
    n_out = len(model_names) or task.num_classes
    present = set(labels.tolist())
    absent = [c for i, c in enumerate(model_names) if i not in present]

    members_meta = list(meta.get("members") or [])
    best_trial = meta.get("best_single")
    best_trial = best_trial.get("trial") if isinstance(best_trial, dict) else best_trial
    best_trial = str(best_trial) if best_trial else None
    trials = [str(m.get("trial")) for m in members_meta]
    member_call, best_index, missing, best_way = None, None, None, None
    if not meta:  # no asset: another tool's SavedModel, not an older export (no re-export)
        missing = (f"{model_dir} is not an export of hubensemble (no assets/hubensemble.json),"
                   " so no members are known: only the model was measured")
    elif MEMBERS_SIGNATURE not in loaded.signatures:
        missing = (f"the export has no {MEMBERS_SIGNATURE} signature, so its members cannot "
                   "be run one by one; only the ensemble was evaluated")
        best_way = EXPORT_AGAIN
    elif best_trial is None:
        missing = ("the export's assets/hubensemble.json names no best_single trial; only "
                   "the ensemble was evaluated")
        best_way = EXPORT_AGAIN
    elif not trials:  # metadata of an older or a damaged export: the member is unknown
        missing = (f"the export's assets/hubensemble.json lists no members, so the best single "
                   f"candidate {best_trial} cannot be found among {MEMBERS_SIGNATURE}' outputs; "
                   "only the ensemble was evaluated")
        best_way = EXPORT_AGAIN
    elif best_trial not in trials:
        missing = (f"the best single candidate {best_trial} is not a member of the "
                   "exported ensemble, so the export cannot run it; only the ensemble "
                   "was evaluated")
    else:
        best_index = trials.index(best_trial)
        member_call = _with_members(loaded.signatures[MEMBERS_SIGNATURE], serve,
                                    who=f"{model_dir}'s {MEMBERS_SIGNATURE} signature", way=way)

    conditions = [("clean", None)] + [(n, s) for n in names for s in sevs]
    # Unbalanced classes: each entry's balanced accuracy too, as fit's closing table gives it.
    lopsided = unbalanced(labels)
    # The cells an interrupted evaluation of this very export, data and flags finished
    # (evaluationcells: each is recorded as it finishes); a clean-only one is one pass.
    record = _cell_record(model_dir, task, split, seed, batch_size) if names else None
    scores = {c: s for c, s in (record.read() if record else {}).items() if c in conditions}
    if scores:
        from hubensemble.evaluationcells import kept_words

        # Information, said as rank's and tune's resume lines are (once, its own "evaluate:"),
        # not a WARNING that named the stage twice ("hubensemble.evaluate: evaluate: kept").
        say(SimpleNamespace(quiet=not progress),
            kept_words(len(scores) - (("clean", None) in scores), len(conditions) - 1,
                       ("clean", None) in scores, record.path))
    # The total counts every corrupted copy: say so, or 797 test images read as 12,752.
    copies = (f" ({len(labels)} x {len(conditions)}: {passes_words(names, sevs)})"
              if len(conditions) > 1 else "")
    if note := long_evaluation_note(meta, len(labels), names, sevs, split):
        log.warning("%s", note)
    bar = progress_bar(total=len(conditions) * len(labels), desc=f"evaluate {split}{copies}",
                       unit="img", shown=progress, initial=len(scores) * len(labels))
    batches = size_batches(sizes, batch_size)
    try:
        # One condition at a time over the whole split, so that each cell finishes (and is
        # recorded) before the next starts: batch by batch over every condition, a kill in
        # the last batch lost them all.
        for cond in [c for c in conditions if c not in scores]:
            name, sev = cond
            if len(conditions) > 1:  # which pass of how many, on a long grid
                bar.set_postfix_str(f"{'clean' if sev is None else f'{name} {sev}'}, pass "
                                    f"{conditions.index(cond) + 1}/{len(conditions)}")
            # Filled batch by batch at the split's indices (the batches group the images by
            # size).
            ens_probs = np.zeros((len(labels), n_out), np.float32)
            single_probs = np.zeros((len(labels), n_out), np.float32)
            for idx in batches:
                # uint8 -> float32 / 255 at the images' own size: the pixels predict sends,
                # each image cast into the batch (no uint8 stack) and divided in place.
                clean = aligned_empty((len(idx), *data.images[idx[0]].shape))
                for j, i in enumerate(idx):
                    clean[j] = data.images[i]
                clean /= np.float32(255)
                x = clean if name == "clean" else _corrupt(name, clean, idx, sev, seed)
                x = _as_tensor(x)
                p, mp = (serve(x), None) if member_call is None else member_call(x)
                if p.ndim != 2 or p.shape[1] != n_out:
                    raise _shape_refusal(p.shape, n_out, meta, task, model_dir)
                _check_scored(p, SERVING_SIGNATURE, "probabilities", idx, cond, split,
                              model_dir)
                ens_probs[idx] = p
                if member_call is not None:
                    if mp.ndim != 3 or (members_meta and mp.shape[1] != len(members_meta)):
                        raise RunError(f"{model_dir}'s {MEMBERS_SIGNATURE} signature returned "
                                       f"shape {mp.shape}; expected [N, {len(members_meta)}, C] "
                                       f"(one slice per member of assets/{METADATA_ASSET}){way}")
                    _check_scored(mp[:, best_index, :], MEMBERS_SIGNATURE,
                                  f"member_probabilities[:, {best_index}]", idx, cond, split,
                                  model_dir)
                    single_probs[idx] = mp[:, best_index, :]
                # The condition's tensor goes before the next batch is made: it was held
                # beside the clean batch and the new copy (one batch more at the peak).
                x = p = mp = clean = None
                bar.update(len(idx))
            scores[cond] = {
                "ensemble": metrics.metrics(ens_probs, labels, balanced=lopsided),
                "best_single": (metrics.metrics(single_probs, labels, balanced=lopsided)
                                if member_call is not None else None)}
            if record is not None:
                record.add(cond, scores[cond])
    finally:
        bar.close()

    export_task = task_record(meta)  # (edited into no object: none, said above)
    same = same_data(export_task, task, split)

    result = {
        "model": absolute(os.fspath(model_dir)),
        # Which export was measured: the report tells an export written again since (same
        # members, e.g. export --retrain-full) from this one (formats.evaluated_earlier_export).
        "export": export_identity(model_dir, meta),
        "split": split,
        "n": int(len(labels)),
        # What of the data did not become an example (unreadable files, duplicates
        # --dedupe dropped): a folder of 58 files scored on 56 says which 2 and why; and what
        # decoding did to the rest (oriented, turned, shrunk), as the data's summary says.
        # Its spec (Task.spec: None for a Task made in Python), which evaluate --data reads.
        "task": {"name": task.name, "source": task.source, "spec": task.spec,
                 "fingerprint": task.fingerprint,
                 "num_classes": task.num_classes, **task.files_record(),
                 # The data's other splits: e.g. a folder with only train/ scores the test
                 # split fit would carve off it (docs/report.md), not all its images; of
                 # the export's own data read one split alone, the export's record of them.
                 "unscored": _unscored(task, data, export_task, split, same)},
        # How the data's classes were matched to the model's outputs, and which of the
        # model's classes have no example in the split (its metrics do not cover them).
        "classes": {"matched_by": "name" if model_names else "position",
                    "model": model_names or list(task.class_names),
                    "absent": absent,
                    # One class so large that accuracy alone misleads (as fit's table says).
                    "majority": majority_note(model_names or list(task.class_names),
                                              labels, split),
                    # Classes of 1-4 examples here, whose figures mean little (fit's words).
                    "few": few_note(model_names or list(task.class_names), labels, split,
                                    what="these metrics"),
                    # Entries then hold "balanced_accuracy" too (`data.coverage.unbalanced`).
                    "unbalanced": lopsided},
        # None when the export does not say which data it was made on.
        "same_data_as_export": same,
        # Scored images that trained or chose the export (its run's record; null: unknown).
        "not_held_out": not_held_out(model_dir, task, split, meta),
        # The folder the export was fit on, changed since: all of it scored (null: not so).
        "data_changed": changed_files(meta, task),
        # [h, w] of a split of one size; null when sizes vary (each is fed at its own).
        "image_size": sizes[0].tolist() if len(sizes) and (sizes == sizes[0]).all() else None,
        "seed": int(seed),
        "severities": sevs,
        "best_single": ({"trial": best_trial, "index": best_index,
                         "module": members_meta[best_index].get("module")}
                        if member_call is not None else None),
        "members": [{"trial": m.get("trial"), "module": m.get("module"),
                     "weight": m.get("weight")} for m in members_meta],
        "clean": scores[("clean", None)],
        "corruptions": {n: {str(s): scores[(n, s)] for s in sevs} for n in names},
        "parameters": {n: {str(s): PARAMETERS[n][s - 1] for s in sevs} for n in names},
    }
    if missing:
        result["best_single_missing"] = missing
        if best_way:  # its way on, worded where shown (the report: its run's commands)
            result["best_single_way"] = best_way
    if names:
        corrupted = [scores[(n, s)] for n in names for s in sevs]
        result["mean_corrupted"] = {
            "ensemble": _mean_metrics([c["ensemble"] for c in corrupted]),
            "best_single": (_mean_metrics([c["best_single"] for c in corrupted])
                            if member_call is not None else None)}
    else:
        result["mean_corrupted"] = None
    result["seconds"] = round(time.perf_counter() - start_time, 3)
    if note := not_held_out_note(result):  # copies of the run's images (heldout.py)
        # On the export's own data the table gives the note itself (`format_evaluation`, with
        # -q too): a warning beside it said the same sentence twice. On other data the table
        # has one line that points here.
        (log.info if result["same_data_as_export"] else log.warning)("%s", note)
    if note := changed_files_note(result):  # its own folder, changed since it was fit
        log.warning("%s", note)
    if record is not None:  # complete: nothing to resume
        record.remove()
    return result


def _warn_damaged_task(model_dir, meta: dict) -> None:
    """Warns, naming the file, when export metadata `meta`'s "task" (the data the export was
    fit on) is there but no JSON object (edited by hand): it reads as none
    (`exportfolder.task_record`), so whether the scored images trained the export goes
    unsaid; a "task" edited into a string raised AttributeError after the scoring."""
    if "task" in meta and not isinstance(meta["task"], dict):
        log.warning("%s is damaged: its \"task\" is a JSON %s, not an object, so evaluate "
                    "cannot tell whether the scored data is the data the export was fit on; "
                    "write the export again (%s)", metadata_path(model_dir),
                    type(meta["task"]).__name__, export_command(meta, model_dir))


def _cell_record(model_dir, task, split: str, seed: int, batch_size: int):
    """The `evaluationcells.CellRecord` of this evaluation's corruption grid (keyed by the
    export, the data, the split, the seed and the batch size: `cells_key`)."""
    from hubensemble.evaluationcells import CellRecord, cells_key

    return CellRecord(cells_key(model_dir, task, split, seed=seed, batch_size=batch_size,
                                parameters=PARAMETERS))


def _model_classes(model_names: list, n_classes, task) -> np.ndarray:
    """int64 [task.num_classes]: the model's output index of each of `task`'s classes
    (`classmatch.class_index`, by name); DataError for a class the model does not name, or,
    without names, for a class count other than its `n_classes`."""
    if not model_names and n_classes is not None and int(n_classes) != task.num_classes:
        raise DataError(f"the model predicts {n_classes} classes, the task {task.name!r} has "
                        f"{task.num_classes}; {_trained_for(n_classes)}")
    return class_index(model_names, task)


def _shape_refusal(shape, n_out: int, meta: dict, task, model_dir) -> HubensembleError:
    """The refusal of `model_dir`'s serving_default whose 'probabilities' of a batch have
    `shape` (a tuple) other than [N, `n_out`] (`n_out`: the classes its metadata `meta`
    names, else `task`'s), with the way on. A table of another rank, or of another class
    count than the metadata names, is not the model the metadata describes: RunError ending
    in `model_way_on` (export it again, naming its run; for another maker's model, what
    evaluate takes). Of another count than the data's where no metadata counts the classes
    (matched by position): DataError, to evaluate it on the data it was trained for. It said
    "the model returns probabilities of shape (8, 4); its metadata names 3 classes" with no
    way on, and named metadata for a model that has none."""
    got = (f"{model_dir}'s {SERVING_SIGNATURE} signature returns probabilities of shape "
           f"{tuple(shape)}")
    named = len(meta.get("class_names") or []) or meta.get("num_classes")
    if len(shape) != 2:
        return RunError(f"{got}, not [N, C] (one row of class probabilities per image); "
                        f"{model_way_on(model_dir, meta)}")
    if isinstance(named, int) and named:
        return RunError(f"{got}, but its metadata (assets/{METADATA_ASSET}) names {named} classes: "
                        f"the metadata is not this model's; {model_way_on(model_dir, meta)}")
    return DataError(f"{got}, {counted(shape[1], 'class', 'classes')}, and the task "
                     f"{task.name!r} has {n_out}, matched to them by position ("
                     + ("its metadata names no classes" if meta else
                        f"no assets/{METADATA_ASSET} names them")
                     + f"); {_trained_for(shape[1])}")


def _trained_for(n_classes) -> str:
    """The way on from data of another class count than the model's `n_classes` (its
    classes unnamed: matched by position), in the caller's words."""
    return (f"evaluate it on the data it was trained for "
            f"({option_word('--data SPEC', 'a task')} of {n_classes} classes, in the order of "
            "the model's outputs)")


def same_data(export_task: dict, task, split: str) -> bool | None:
    """Whether `task` is the data the export was made on (`export_task`: its metadata's
    "task"): its whole `Task.fingerprint` is the recorded one, or, for a task that holds
    the scored `split` without every split the export's data had (a tfds split read alone:
    evaluate reads one), that split's fingerprint is the export's record of it
    (task.splits, `Task.split_fingerprints`). An export written before it recorded them is
    compared by the whole fingerprint alone (False there: export it again). None when the
    export records no fingerprint."""
    from hubensemble.data.task import split_key

    made_on = export_task.get("fingerprint")
    if not made_on:
        return None
    if made_on == task.fingerprint:
        return True
    key = split_key(split)
    recorded = export_task.get("splits")
    recorded = recorded.get(key) if isinstance(recorded, dict) else None
    if not isinstance(recorded, dict) or not recorded.get("fingerprint"):
        return False  # an older export: its whole fingerprint alone
    return recorded["fingerprint"] == task.split_fingerprints([key])[key]["fingerprint"]


def _unscored(task, data, export_task: dict, split: str, same) -> dict[str, int]:
    """The result's task "unscored": {split: examples} of the data's splits other than the
    scored one (`data`); when `task` holds the scored split alone and is the export's own
    (`same`), the export's record of its other splits (task.splits), so the table says
    which trained and chose it ("not scored: train 800, val 200 (the data the export was
    made on …)"), in train, val, test order."""
    from hubensemble.data.task import SPLIT_NAMES, split_key

    held = {s: len(getattr(task, s)) for s in task.present_splits()
            if getattr(task, s) is not data}
    recorded = export_task.get("splits")
    if held or not same or not isinstance(recorded, dict):
        return held
    key = split_key(split)
    return {s: int(recorded[s]["examples"]) for s in SPLIT_NAMES
            if s != key and isinstance(recorded.get(s), dict)
            and isinstance(recorded[s].get("examples"), int)}


def _check_scored(probs, signature, key, idx, cond, split, model_dir) -> None:
    """RunError when `probs` ([len(idx), C], the `key` output of `signature` on the images
    `idx` of `split` under condition `cond`) is not a table of probabilities
    (`metrics.probability_fault`), naming the image and the way on: a model returning
    logits, or NaN, was scored without a word (an NLL of logits, accuracy counting NaN rows
    as class 0, and "NaN" in the JSON written, which JSON readers refuse)."""
    fault = metrics.probability_fault(probs)
    if fault is None:
        return
    row, why = fault
    name, sev = cond
    where = "clean" if name == "clean" else f"{name} at severity {sev}"
    shown = np.array2string(np.asarray(probs[row]), precision=4, threshold=6, edgeitems=3)
    raise RunError(f"{model_dir}: {signature}'s {key!r} output on a batch of "
                   f"{counted(len(idx), split + ' image')} ({where}) is not probabilities: "
                   f"{why}; e.g. the {split} split's image {int(idx[row])}: {shown}. "
                   "evaluate scores a model whose output is a probability per class (a "
                   "softmax's); give a model that returns logits a softmax, or export it with "
                   "hubensemble; a NaN or inf is a model that diverged")
