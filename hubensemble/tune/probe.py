"""Head-only candidates: logistic-regression probes on a module's frozen, cached embeddings.

A probe candidate is the classifier `build_classifier` makes (the module, frozen, then a Dense
head and a softmax) whose head alone was fitted: a multinomial logistic regression on the
module's embeddings of the training images, standardised, with an L2 penalty (scikit-learn's
``LogisticRegression``, L-BFGS), folded back into one Dense kernel and bias on the raw
embeddings. It is written as an ordinary candidate (`hubensemble.candidate.write_candidate`:
trial.json, val/test probabilities, a weights file a `build_classifier(...)` model loads), so
the ensemble selects it and the export rebuilds it like any other.

Resolution (`probe_resolution`): the module's own — its catalogue ``input_size``, else its
``native_size`` (the size it was pre-trained at), else the BiT-HyperRule evaluation resolution
uncapped (the `paper` profile's) — whatever the profile caps fine-tuning at: a probe costs one
frozen forward pass per image, read from rank's embedding cache when it is there.
The probe baseline of LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features
and Underperform Out-of-Distribution") and of tools/benchmarks/bench_method.py.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from typing import Sequence

import numpy as np

from hubensemble import candidate, hyperrule, sweeps
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError, ModuleLoadError, first_line, reraise_stop
from hubensemble.fileio import machine_error
from hubensemble.sweepstate import TRAIN_RULE
from hubensemble.threads import warnings_block

log = logging.getLogger(__name__)

#: A class missing from the training labels gets this logit bias below the others (and a zero
#: kernel column), so its probability is ~e^-30 of theirs.
MISSING_CLASS_BIAS = -30.0
#: Standardisation divides each feature by max(its training std, this x the median std of the
#: non-constant features). A feature that is almost dead on the training images (a ReLU
#: channel that fires on one image: std ~1e-5) would otherwise be blown up to unit variance,
#: and its weight folded back onto the raw embedding becomes huge (MobileNet V1 on
#: dsprites_orient10: |kernel| up to 351, against 9.6 with the floor). Such a head is fragile:
#: a test image on which the channel fires gets an arbitrary logit, and LP-FT from it exploded
#: at lr 6.25e-5 (loss 2.3 -> 139 in 60 steps) as the backbone's first updates woke the
#: channel. With the floor the probe's validation accuracy was the same on that task and its
#: cross-entropy lower (0.134 against 0.143); docs/tune.md has the other tasks.
SCALE_FLOOR = 0.1


def probe_resolution(spec: ModuleSpec, task) -> int:
    """The square side in pixels a probe of `spec` embeds and evaluates at: max(input_size)
    when the entry has one (the module resizes to it itself), else max(native_size), else the
    uncapped HyperRule evaluation resolution of the task (`hyperrule.eval_resolution` under
    the paper profile: 128 px for images under 96 x 96, else 480 px): `hyperrule.probe_side`,
    the rule's one copy."""
    return hyperrule.probe_side(spec.input_size, getattr(spec, "native_size", None),
                                task.image_size)


def fit_probe(embeddings, labels, num_classes: int, *, l2: float,
              max_iter: int = sweeps.PROBE_MAX_ITER) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression on embeddings, as one Dense layer.

    embeddings: float [N, D]; labels: int [N] in [0, num_classes); l2: lambda > 0 of the
    objective mean cross-entropy + lambda / 2 * ||W||^2 on embeddings standardised per feature
    (scikit-learn's C = 1 / (lambda * N); the bias is not penalised), each feature divided by
    max(std, SCALE_FLOOR x the median std of the non-constant features). Returns (kernel float32
    [D, num_classes], bias float32 [num_classes]) such that softmax(x @ kernel + bias) are the
    probabilities on the raw (unstandardised) embeddings x. A class absent from `labels` gets
    a zero column and a bias MISSING_CLASS_BIAS below the lowest other. Raises
    HubensembleError for fewer than two classes present, mismatched sizes or lambda <= 0.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(embeddings, np.float64)
    y = np.asarray(labels).astype(np.int64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise HubensembleError(f"a probe needs embeddings [N, D] and labels [N], got "
                               f"{x.shape} and {y.shape}")
    if not l2 > 0:
        raise HubensembleError(f"a probe's L2 strength must be > 0, got {l2!r}")
    present = np.unique(y)
    if len(present) < 2:
        raise HubensembleError(f"a probe needs at least two classes in its training labels, "
                               f"got {len(present)}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    alive = scale[scale >= 1e-12]
    # A constant feature (std < 1e-12, StandardScaler's rule) is 0 after centring and gets no
    # weight whatever it is divided by; the floor keeps near-dead ones from blowing up.
    floor = SCALE_FLOOR * float(np.median(alive)) if alive.size else 1.0
    scale = np.maximum(scale, floor)
    z = (x - mean) / scale
    clf = LogisticRegression(C=1.0 / (float(l2) * len(y)), max_iter=int(max_iter))
    with warnings_block():
        # Not converging within max_iter still leaves a usable (early-stopped) probe.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(z, y)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # two classes: sigma(w.z + b) == softmax([0, w.z + b])
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    w = np.zeros((num_classes, x.shape[1]))
    b = np.full(num_classes, float(np.min(intercept)) + MISSING_CLASS_BIAS)
    w[clf.classes_] = coef
    b[clf.classes_] = intercept
    kernel = (w / scale).T
    bias = b - kernel.T @ mean
    return kernel.astype(np.float32), bias.astype(np.float32)


def probe_probs(embeddings, kernel, bias) -> np.ndarray:
    """softmax(embeddings @ kernel + bias): float32 [N, C] probabilities (what the frozen
    classifier with this head computes on the same embeddings)."""
    logits = np.asarray(embeddings, np.float64) @ np.asarray(kernel, np.float64) + bias
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def split_embeddings(spec: ModuleSpec, task, splits: Sequence[str], *, resolution: int,
                     batch_size: int = 64, cache_dir=None,
                     on_batch=None) -> tuple[dict, float]:
    """({split: float32 [N, D]}, seconds) of the frozen module at `resolution` x `resolution`
    pixels, through rank's embedding cache (`hubensemble.rank.embed`: the runtime's call,
    an entry per module, resolution, task and split). Raises ModuleLoadError as embed does.
    `on_batch(split, done, total)`, when given, follows each batch embedded (embed's
    `on_batch`, with the split): a progress note."""
    from hubensemble.rank.embeddings import embed

    start = time.perf_counter()
    out = {}
    for split in splits:
        note = None if on_batch is None else functools.partial(on_batch, split)
        out[split] = embed(spec, task, split, profile="paper", batch_size=batch_size,
                           cache_dir=cache_dir, resolution=(resolution, resolution),
                           on_batch=note).embeddings
    return out, time.perf_counter() - start


def pick_probe(train_x, train_y, val_x, val_y, num_classes: int, *,
               l2s: Sequence[float] = sweeps.PROBE_L2, max_iter: int = sweeps.PROBE_MAX_ITER):
    """The probe of the L2 strength with the lowest validation cross-entropy.

    train_x / val_x: float [N, D] embeddings; train_y / val_y: int labels in [0, num_classes);
    l2s: the lambdas tried (default `sweeps.PROBE_L2`), each fitted on the training
    embeddings by `fit_probe` and scored by `metrics.nll` (nats, >= 0) of `probe_probs` on the
    validation embeddings; the first lowest wins a tie. This is how Kumar et al. (2022) start
    LP-FT: the linear probe with its regulariser chosen on validation. Returns (kernel float32
    [D, C], bias float32 [C], lambda, {lambda: validation cross-entropy}). Raises
    HubensembleError as `fit_probe` does, or for an empty `l2s`.
    """
    from hubensemble import metrics

    if not len(l2s):
        raise HubensembleError("pick_probe needs at least one L2 strength")
    best, scores = None, {}
    for l2 in l2s:
        kernel, bias = fit_probe(train_x, train_y, num_classes, l2=float(l2), max_iter=max_iter)
        scores[float(l2)] = metrics.nll(probe_probs(val_x, kernel, bias), val_y)
        if best is None or scores[float(l2)] < best[3]:
            best = (kernel, bias, float(l2), scores[float(l2)])
    return best[0], best[1], best[2], scores


def head_from_probe(spec: ModuleSpec, task, *, resolution: int, splits=("train",),
                    l2: float | None = None, cache_dir=None, on_batch=None, on_fit=None):
    """(kernel [D, C], bias [C], lambda) of the probe an LP-FT head (a fine-tuning trial with
    head_init "probe") starts from, fitted on the frozen module's embeddings of `splits` at
    `resolution` (rank's cache). `l2` None picks lambda among `sweeps.PROBE_L2` on the
    validation embeddings (`pick_probe`) when "val" is not among `splits`; a fit that trains
    on val too (export --retrain-full) takes the lambda its trial recorded, and without one
    `sweeps.PROBE_HEAD_L2` (what trials used before lambda was picked). Progress notes:
    `on_batch(split, done, total)` after each batch embedded (`split_embeddings`), `on_fit()`
    as the probe's fit starts (each None: nothing)."""
    splits = tuple(splits)
    picking = l2 is None and "val" not in splits
    emb, _ = split_embeddings(spec, task, splits + (("val",) if picking else ()),
                              resolution=resolution, cache_dir=cache_dir, on_batch=on_batch)
    if on_fit is not None:
        on_fit()
    x = np.concatenate([emb[s] for s in splits])
    y = np.concatenate([task.split(s).labels for s in splits])
    if picking:
        kernel, bias, l2, scores = pick_probe(x, y, emb["val"], task.val.labels,
                                              task.num_classes)
        log.info("LP-FT head of %s: lambda %g (validation cross-entropy %s)", spec.name, l2,
                 ", ".join(f"{k:g}: {v:.4f}" for k, v in scores.items()))
        return kernel, bias, l2
    l2 = sweeps.PROBE_HEAD_L2 if l2 is None else float(l2)
    kernel, bias = fit_probe(x, y, task.num_classes, l2=l2)
    return kernel, bias, l2


def fit_probe_member(spec: ModuleSpec, task, hparams, *, splits=("train",), cache_dir=None):
    """The frozen classifier of a probe candidate refitted on `splits` from its recorded
    HParams (kind "probe": its L2 strength and iteration limit): what `tune.fit_member`
    returns for a probe (e.g. the export's --retrain-full on train + val)."""
    from hubensemble.tune.model import build_classifier, set_head

    size = probe_resolution(spec, task)
    emb, _ = split_embeddings(spec, task, splits, resolution=size,
                              batch_size=hparams.batch_size, cache_dir=cache_dir)
    x = np.concatenate([emb[s] for s in splits])
    y = np.concatenate([task.split(s).labels for s in splits])
    kernel, bias = fit_probe(x, y, task.num_classes, l2=hparams.weight_decay,
                             max_iter=hparams.steps)
    model = build_classifier(spec, task.num_classes, trainable=False)
    return set_head(model, kernel, bias)


def run_probe_entries(entries, spec: ModuleSpec, task, run, *, profile_name: str,
                      keep_weights: str = "all", cache_dir=None, check=None,
                      on_done=None, on_batch=None) -> list[dict]:
    """Fits and writes the probe candidates of one module (plan entries of kind "probe"):
    the module's embeddings of train / val / test are computed (or read from the cache) once,
    then each entry's L2 strength gives one candidate through `candidate.write_candidate`,
    with the probabilities softmax(embeddings @ kernel + bias) and, unless `keep_weights` is
    "none", the frozen classifier's weights (one `build_classifier` model, its head set per
    entry). `check(val_probs, labels)` returns a reason to fail a candidate (the divergence
    rule of tune.train) or None; `on_done(record)` is called after each write;
    `on_batch(split, done, total)` after each batch embedded (`split_embeddings`).

    Each record has the usual trial.json fields plus "eval_size" (the probe resolution),
    "batchnorm" ("inference": the module is frozen), "module_fingerprint" (the module files'
    content key, as a fine-tuning trial records it; None when the module failed),
    "embed_seconds" (the module's embedding time, shared by its entries; a cache hit costs
    almost nothing) and "seconds" = its own fit and write time + its share of that. A module
    that cannot be embedded fails every entry with the reason. Returns the records.
    """
    import socket

    has_test = task.test is not None
    size = probe_resolution(spec, task)
    splits = ("train", "val") + (("test",) if has_test else ())
    records = []
    try:
        emb, embed_seconds = split_embeddings(spec, task, splits, resolution=size,
                                              batch_size=entries[0].hparams.batch_size,
                                              cache_dir=cache_dir, on_batch=on_batch)
        error = None
    except ModuleLoadError as e:
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        emb, embed_seconds, error = None, 0.0, f"the module cannot load: {e}"
    except Exception as e:  # noqa: BLE001 - any other error fails the module's probes
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        _raise_machine_error(e)
        log.info("embedding %s for its probes failed", spec.name, exc_info=True)
        emb, embed_seconds, error = None, 0.0, f"{type(e).__name__}: {first_line(e)}"
    model = None
    share = embed_seconds / max(1, len(entries))
    # The module files' content key, as a fine-tuning trial records its backbone's (both
    # `hub.locate_spec`'s ModuleFiles.fingerprint): cost's stale rule and the export compare it.
    fingerprint = None if error else _module_fingerprint(spec)
    for entry in entries:
        hp = entry.hparams
        start = time.perf_counter()
        record = {"trial": entry.trial_id, "module": entry.module, "handle": spec.handle,
                  "hparams": hp.to_json(), "seed": hp.seed, "status": "ok", "reason": None,
                  "val": None, "test": None, "has_test": has_test, "weights": None,
                  "seconds": None, "train_seconds": None, "steps": hp.steps,
                  "profile": profile_name, "eval_size": size, "plan_index": entry.index,
                  "kind": "probe", "embed_seconds": embed_seconds, "strategy": None,
                  # The frozen module runs in inference mode (BatchNorm's moving statistics).
                  "batchnorm": hp.batchnorm, "batchnorm_evidence": None,
                  "module_fingerprint": fingerprint,
                  "replicas": 1, "host": socket.gethostname(), "train_rule": TRAIN_RULE}
        val_probs = test_probs = save = None
        try:
            if error:
                raise HubensembleError(error)
            t0 = time.perf_counter()
            kernel, bias = fit_probe(emb["train"], task.train.labels, task.num_classes,
                                     l2=hp.weight_decay, max_iter=hp.steps)
            record["train_seconds"] = time.perf_counter() - t0
            val_probs = probe_probs(emb["val"], kernel, bias)
            record["val"] = candidate.split_record(val_probs, task.val.labels)
            if has_test:
                test_probs = probe_probs(emb["test"], kernel, bias)
                record["test"] = candidate.split_record(test_probs, task.test.labels)
            why = check(val_probs, task.val.labels) if check is not None else None
            if why:
                raise HubensembleError(why)
            if keep_weights == "all":
                if model is None:
                    from hubensemble.tune.model import build_classifier

                    model = build_classifier(spec, task.num_classes, trainable=False)
                from hubensemble.tune.model import set_head

                set_head(model, kernel, bias)
                save = _timed(model.save_weights, record, start, share)
                record["weights"] = candidate.WEIGHTS_FILE
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - this candidate fails, the others go on
            reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
            _raise_machine_error(e)
            reason = str(e) if isinstance(e, HubensembleError) else \
                f"{type(e).__name__}: {first_line(e)}"
            record.update(status="failed", reason=reason, val=None, test=None, weights=None)
            val_probs = test_probs = save = None
        record["seconds"] = share + time.perf_counter() - start
        candidate.write_candidate(run.candidates, record, val_probs=val_probs,
                                  test_probs=test_probs, save_weights=save)
        records.append(record)
        if on_done is not None:
            on_done(record)
    return records


def _module_fingerprint(spec: ModuleSpec) -> str | None:
    """The content key (`hub.locate_spec(spec).fingerprint`, the one a fine-tuning trial's
    backbone records) of `spec`'s module files, or None when they cannot be located now."""
    from hubensemble.hub import locate_spec

    try:
        return locate_spec(spec).fingerprint
    except ModuleLoadError as e:
        reraise_stop(e)
        log.info("locating %s for its probes' records failed", spec.name, exc_info=True)
        return None


def _raise_machine_error(exc: Exception) -> None:
    """Raises the OSError of a write the machine refused behind `exc` (a full disk:
    `fileio.machine_error`): the command stops and the probes run again once space is freed,
    instead of being recorded as failed for good."""
    disk = machine_error(exc)
    if disk is exc:
        raise exc
    if disk is not None:
        raise disk from exc


def _timed(save_weights, record, start, share):
    """save_weights that also sets record["seconds"] once the weights are written (before
    write_candidate writes trial.json, so the time includes writing them)."""

    def save(path):
        save_weights(path)
        record["seconds"] = share + time.perf_counter() - start

    return save
