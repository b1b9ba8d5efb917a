"""Embeddings of a task's images by a module, through the module runtime, with a disk cache."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import time

import numpy as np

from hubensemble import __version__
from hubensemble.environment import CacheFolder, cache_folder, cache_unwritable
from hubensemble.errors import ModuleLoadError, RunError, held_stops, reraise_stop
from hubensemble.fileio import (atomic_save_npy, atomic_write_json, file_lock, numpy_load_fault,
                                read_json)
from hubensemble.lockwords import option_word
from hubensemble.rank.located import recall, remember
from hubensemble.text import escaped, time_stamp

log = logging.getLogger(__name__)

# Bump when the way embeddings are computed changes, so old cache entries are not reused.
# 2: images resized with augment.resize (antialiased bilinear), the resize of every stage.
CACHE_FORMAT = 2
#: The resize policy named in the cache key (hubensemble.augment.resize).
RESIZE_POLICY = "bilinear-antialias"
# A process computing an embedding holds its entry's lock; a big module on a CPU can take
# a long time, so the other process waits rather than giving up (dead owners are detected).
CACHE_LOCK_TIMEOUT = 6 * 3600.0
# The preprocessed images of a split are kept in memory (tf.data cache) and shared by every
# module of the same resolution while all those kept fit in this many bytes together (one
# budget for a run_rank, `_Datasets`); a split above it alone (e.g. 800 images at 480 px =
# 2.2 GB) is re-read and resized for each module instead.
DATASET_CACHE_BYTES = 512 << 20
#: What goes on when the embedding cache cannot be written (environment.cache_unwritable).
_GOING_ON = "the ranking (and tune's probes and LP-FT heads) goes on"


# ---------------------------------------------------------------------------------------------
# Resolution and cache location (pure policy)
# ---------------------------------------------------------------------------------------------

def _profile(profile):
    from hubensemble.hyperrule import Profile, get_profile

    return profile if isinstance(profile, Profile) else get_profile(profile)


def embedding_resolution(spec, task, profile) -> tuple[int, int]:
    """(height, width) in pixels the images are resized to for `spec`'s embeddings.

    The catalogue entry's `input_size` when it has one (the module takes nothing else);
    otherwise the BiT-HyperRule evaluation resolution of the task's median training image
    size (128 px for images smaller than 96x96 pixels, else 480 px; big_transfer's
    ``bit_hyperrule.py``), capped by the profile (`paper`: uncapped, `cpu`: 64 px, `quick`:
    32 px). ``profile`` is a name or a hyperrule.Profile; an unknown name raises
    HubensembleError.
    """
    if spec.input_size is not None:
        return int(spec.input_size[0]), int(spec.input_size[1])
    return default_resolution(task, profile)


def default_resolution(task, profile) -> tuple[int, int]:
    """The HyperRule evaluation resolution of `task` under `profile` (entries without
    input_size)."""
    from hubensemble.hyperrule import eval_resolution

    side = eval_resolution(task.image_size, None, _profile(profile))
    return int(side), int(side)


def default_cache_dir() -> str:
    """$HUBENSEMBLE_CACHE_DIR, else $XDG_CACHE_HOME/hubensemble/embeddings (~/.cache/…), `~`
    expanded (environment.path_from_environment)."""
    return _folder(None).path


def _folder(cache_dir) -> CacheFolder:
    """The embedding cache's folder: `cache_dir` (--cache-dir) when given, else
    default_cache_dir's; with what named it, for the warning when it cannot be written."""
    # In the caller's words: run_rank's / fit's keywords from Python (lockwords).
    return cache_folder(cache_dir, what="embedding cache", variable="HUBENSEMBLE_CACHE_DIR",
                        default=("hubensemble", "embeddings"),
                        flag=option_word("--cache-dir", "cache_dir"),
                        skip=option_word("--no-cache (rank, fit)", "use_cache=False (run_rank, "
                                         "fit)") + " neither reads nor writes it")


def cache_key(module_fingerprint, resolution, value_range, output_key, data_fingerprint,
              split) -> str:
    """sha256 (64 hex digits) of what determines an embedding: the cache format, the module's
    content fingerprint, the preprocessing (resolution, resize policy, value range, output
    key), the task's fingerprint and the split."""
    what = {"format": CACHE_FORMAT, "module": module_fingerprint,
            "resolution": [int(resolution[0]), int(resolution[1])], "resize": RESIZE_POLICY,
            "value_range": value_range, "output_key": output_key, "data": data_fingerprint,
            "split": split}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()


def cache_path(cache_dir, key) -> str:
    """``CACHE_DIR/KEY[:2]/KEY.npy``: where the entry of `key` lives."""
    return os.path.join(cache_dir, key[:2], key + ".npy")


def _read_cache(path, rows):
    """The cached embeddings at `path`, or None when absent or unusable (then recomputed)."""
    if not os.path.exists(path):
        return None
    try:
        emb = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable entry is recomputed
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        log.warning("embedding cache entry %s is unreadable (%s); recomputing it", escaped(path),
                    numpy_load_fault(e))
        return None
    if (emb.ndim != 2 or emb.shape[0] != rows or emb.dtype != np.float32
            or not np.all(np.isfinite(emb))):
        log.warning("embedding cache entry %s has shape %s %s, expected [%d, d] float32; "
                    "recomputing it", escaped(path), emb.shape, emb.dtype, rows)
        return None
    return emb


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class EmbedResult:
    """What `embed` returns: the embeddings, whether they came from the cache, the seconds it
    took (resolve, scan, embed or read), the resolution and the module's fingerprint."""

    embeddings: np.ndarray  # float32 [N, d]
    cache_hit: bool
    seconds: float
    resolution: tuple[int, int] = (0, 0)
    fingerprint: str = ""  # the module's content fingerprint
    key: str | None = None  # the cache key (None with use_cache=False)


class _Datasets:
    """tf.data pipelines of a task's splits per resolution; the resized images of each are
    kept (tf.data cache) and shared by the modules of that resolution while ALL the kept
    ones fit in DATASET_CACHE_BYTES together (float32 bytes of the split at that size).

    The budget is one for the whole run: a resolution that fits alone but not with the
    others frees the least recently used ones (their cache goes with its dataset, once no
    stream of it is left: run_rank collects after each module). Rank goes through the
    modules in catalogue order, not by resolution, so ten resolutions of 512 MB each kept
    5 GB for the whole run before. One that does not fit alone is resized again for each
    module (not kept). The pixels are the same either way (`streams.split_stream`)."""

    def __init__(self, task, batch_size, budget=None):
        self.task = task
        self.batch_size = int(batch_size)
        self.budget = DATASET_CACHE_BYTES if budget is None else int(budget)
        self._kept = {}  # (split, hw) -> (dataset, float32 bytes); least recently used first

    def kept_bytes(self) -> int:
        """The float32 bytes of the resized splits kept now (at most `budget`)."""
        return sum(nbytes for _, nbytes in self._kept.values())

    def get(self, split, hw):
        key = (split, tuple(int(v) for v in hw))
        if key in self._kept:
            self._kept[key] = self._kept.pop(key)  # the most recently used now
            return self._kept[key][0]
        nbytes = len(self.task.split(split)) * key[1][0] * key[1][1] * 3 * 4
        fits = nbytes <= self.budget
        if fits:
            while self._kept and self.kept_bytes() + nbytes > self.budget:
                del self._kept[next(iter(self._kept))]  # the least recently used
        ds = self.task.dataset(split, batch_size=self.batch_size, image_size=hw, cache=fits)
        if fits:
            self._kept[key] = (ds, nbytes)
        return ds


def _call_frozen(runtime, images):
    return runtime(images, training=False)


def _stoppable(call):
    """`call()`'s value (or its error), run in a thread of its own while the main thread
    waits for it, so that a stop (Ctrl-C, SIGTERM: their handlers run in the main thread
    only, between bytecodes, never inside TensorFlow's C++) is raised at once rather than
    after the batch: a SIGTERM of a VGG16 rank at --batch-size 64 waited 26.8 s for its
    batch (2 loaded cores). The batch left running ends in the background (the command's
    process exits meanwhile; from Python it finishes and is dropped). Outside the main
    thread: `call()` as it is."""
    import threading

    from hubensemble.threads import caller_thread

    if threading.current_thread() is not threading.main_thread():
        return call()
    box, finished = {}, threading.Event()

    def work():
        try:
            box["value"] = call()
        except BaseException as e:  # noqa: BLE001 - the caller's to raise, in its thread
            box["error"] = e
        finally:
            finished.set()

    caller_thread(work, name="hubensemble-embed-batch").start()
    finished.wait()  # (a signal's handler runs here, and its stop is raised from here)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _forward_all(runtime, dataset, hw, on_batch=None, total=0):
    """Embeddings [N, D] of every batch through one tf.function with a fixed input signature
    [None, h, w, 3] (the last short batch does not retrace); the call is the runtime's.
    ``on_batch(done, total)`` (optional) is called after each batch with the images embedded
    so far and ``total`` (a progress note: `terminal.counting_note`)."""
    from hubensemble._tf import tensorflow as tf

    # No autograph: the body has no control flow, and our errors must reach the caller as
    # raised. A partial (no __code__) gives each module's function its own retracing
    # statistics: functions made from one closure share them, and TensorFlow would warn of
    # "excessive retracing" after a few modules of a catalogue.
    forward = tf.function(functools.partial(_call_frozen, runtime),
                          input_signature=[tf.TensorSpec([None, hw[0], hw[1], 3], tf.float32)],
                          autograph=False)
    # Written in place into one [total, D] array: a list of batches concatenated at the end
    # held every embedding twice for a moment (20,000 images x 1280-d: 102 MB more at the
    # peak). Output of another shape than [batch, D], or more rows than `total`, is kept
    # batch by batch as before, for _compute to refuse with its shape.
    out, chunks, done = None, [], 0
    for images, _ in dataset:
        chunk = _stoppable(lambda: forward(images).numpy())
        if not done and chunk.ndim == 2:  # a width the trace left open: before N x D is held
            runtime.check_width(chunk.shape[1])
        if out is None and not chunks and chunk.ndim == 2 and total:
            out = np.empty((total, chunk.shape[1]), np.float32)
        if out is not None and chunk.ndim == 2 and chunk.shape[1] == out.shape[1] \
                and done + len(chunk) <= len(out):
            out[done:done + len(chunk)] = chunk
        else:
            if out is not None:  # the shape changed: the batches kept so far, then this one
                chunks, out = [out[:done]], None
            chunks.append(chunk)
        done += len(chunk)
        if on_batch is not None:
            on_batch(done, total)
    if out is not None:
        return out[:done]
    return np.concatenate(chunks, axis=0) if chunks else np.zeros((0, 0), np.float32)


def _compute(spec, task, split, hw, datasets, files, warnings=None, on_batch=None, keep=None):
    """The embeddings float32 [N, D] of the split by the module, loaded now; the module's
    load-time warnings (`hub.notices`) are appended to `warnings` (a list) when given;
    `on_batch` as `_forward_all`'s. `keep(emb)` (optional: the cache's write) is called with
    them before they are returned; from the last batch's end until it has returned, a
    Ctrl-C / SIGTERM waits (`errors.held_stops`): a stop there lost the module's finished
    embedding pass (minutes for a real backbone), and it acts once they are in the cache."""
    with contextlib.ExitStack() as held:
        def noted(done, total):
            if done >= total and not held_at:  # the last batch: what follows is kept
                held_at.append(held.enter_context(held_stops()))
            if on_batch is not None:
                on_batch(done, total)

        held_at = []
        emb = _computed(spec, task, split, hw, datasets, files, warnings, noted)
        if keep is not None:
            keep(emb)
        return emb


def _computed(spec, task, split, hw, datasets, files, warnings, on_batch):
    """`_compute`'s embeddings, not kept."""
    from hubensemble.hub import ModuleRuntime
    from hubensemble.hub.notices import captured

    # The module is called exactly as HubLayer (tune) and the export call it: a module that
    # cannot be called that way fails here, with the cause, not in a fine-tuning trial.
    with captured() as said:
        runtime = ModuleRuntime.from_spec(spec, files=files)
    try:
        runtime.check_input_size(hw)
        emb = _forward_all(runtime, datasets.get(split, hw), hw, on_batch,
                           len(task.split(split)))
        with captured() as seen:  # class probabilities, whatever its layers: kept as those
            runtime.warn_if_probabilities(emb)
        said.extend(seen)
        if warnings is not None:
            warnings.extend(said)
    finally:
        # No reference to the module or its traced function survives this call; what they
        # hold in reference cycles is freed by the gc.collect() after each module in
        # run_rank (measured: without it the RSS grows ~7 MB per 17 MB module).
        del runtime
    n = len(task.split(split))
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ModuleLoadError(f"wrong output rank: got embeddings of shape {emb.shape} for {n} "
                              "images; ranking needs [batch, features]", module=spec.name,
                              handle=spec.handle, stage="output")
    # Row blocks: a mask of the whole [N, D] array was a quarter of its bytes more at the peak.
    rows = sum(int((~np.isfinite(emb[i:i + 4096])).any(axis=1).sum())
               for i in range(0, n, 4096))
    if rows:
        raise ModuleLoadError(
            f"the embeddings contain NaN or inf ({rows} of {n} images); check the entry's "
            f"value_range ({spec.value_range}) and input_size", module=spec.name,
            handle=spec.handle, stage="output")
    return np.ascontiguousarray(emb, dtype=np.float32)


def embed(spec, task, split="train", *, profile, batch_size=64, cache_dir=None,
          use_cache=True, resolution=None, on_batch=None) -> EmbedResult:
    """Embeddings (float32 [N, D], N the split's size) of `task`'s `split` by the module of
    `spec`, from the disk cache if there.

    Evaluation preprocessing only: images to float in [0, 1], `augment.resize` (antialiased
    bilinear) to `embedding_resolution`, then the module called through
    `hub.ModuleRuntime` — the value range, input dtype, `training=False` adaptation and
    output selection HubLayer (tune) and the export use. The cache key is the module's content
    fingerprint, the preprocessing, the task fingerprint and the split; an entry is written
    atomically, under a per-entry lock, so concurrent processes compute it once. A cache that
    cannot be created, locked or written (any OSError: read-only, a file in the way, no
    permission, a full disk) is said once (`environment.cache_unwritable`, naming
    --cache-dir or HUBENSEMBLE_CACHE_DIR) and the embeddings are computed without it; what
    it holds is still read. With `use_cache=False` the cache is neither read nor written.
    Raises ModuleLoadError (with its stage) for a module that cannot be resolved, verified,
    loaded or called (the reason names the cause: dtype, fixed input size, output rank, dict
    output without output_key, NaN or inf embeddings, …), TimeoutError when another process
    holds the entry's lock for CACHE_LOCK_TIMEOUT seconds. No reference to the module is
    kept; when embedding many modules in a loop, call gc.collect() between them (as run_rank
    does) so their reference cycles are freed before the next loads.
    `resolution` (height, width) replaces `embedding_resolution` (the probe sweep embeds
    at a module's own resolution; a module with input_size still resizes to it itself).
    `on_batch(done, total)`, when given, is called after each batch the module embeds (not
    on a cache hit) with the images embedded so far and the split's size: a progress note
    (`terminal.counting_note`; rank's bar says "MODULE: 1,200/3,000 images").
    """
    return _embed(spec, task, split, profile=profile, cache_dir=cache_dir, use_cache=use_cache,
                  datasets=_Datasets(task, batch_size), resolution=resolution,
                  on_batch=on_batch)


def _embed(spec, task, split, *, profile, cache_dir, use_cache, datasets, resolution=None,
           on_batch=None):
    from hubensemble.hub import locate_spec

    start = time.perf_counter()
    hw = (embedding_resolution(spec, task, profile) if resolution is None
          else (int(resolution[0]), int(resolution[1])))

    def located():
        return locate_spec(spec)

    if not use_cache:
        files = located()
        emb = _compute(spec, task, split, hw, datasets, files, on_batch=on_batch)
        return EmbedResult(emb, False, time.perf_counter() - start, hw, files.fingerprint)
    folder = _folder(cache_dir)
    cache_dir = folder.path
    rows = len(task.split(split))
    # Resolve and verify (sha256) always; the fingerprint and the safety verdict come from
    # the files' remembered identity when they have not changed (rank.located), else from
    # hub.locate. The module is loaded only on a miss, and then located afresh first.
    files, fingerprint = None, _recall(spec, cache_dir)
    if fingerprint is None:
        files = located()
        fingerprint = files.fingerprint
        _remember(folder, spec, files)
    key = _key(spec, fingerprint, files, hw, task, split)
    entry = cache_path(cache_dir, key)
    emb = _read_cache(entry, rows)  # entries appear by rename: never half-written
    hit = emb is not None
    if not hit and files is None:  # a miss: never load a module on the memo's word
        files = located()
        _remember(folder, spec, files)
        if files.fingerprint != fingerprint:
            fingerprint = files.fingerprint
            key = _key(spec, fingerprint, files, hw, task, split)
            entry = cache_path(cache_dir, key)
    if not hit:  # an entry an older hubensemble keyed with the call's fields as written
        written = cache_key(files.fingerprint, hw, spec.value_range, spec.output_key,
                            task.fingerprint, split)  # (before b0774c6 and 5adff17)
        emb = _read_cache(cache_path(cache_dir, written), rows) if written != key else None
        if emb is not None:
            hit, key, entry = True, written, cache_path(cache_dir, written)
    if not hit:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(file_lock(entry + ".lock", timeout=CACHE_LOCK_TIMEOUT))
            except TimeoutError:  # another process computes it: not the cache's fault
                raise
            except OSError as e:
                # A cache that cannot be written (read-only, a file in the way, no
                # permission, a full disk) costs speed, never the ranking nor the module.
                cache_unwritable(folder, e, _GOING_ON)
                emb = _compute(spec, task, split, hw, datasets, files, on_batch=on_batch)
                return EmbedResult(emb, False, time.perf_counter() - start, hw, fingerprint)
            emb = _read_cache(entry, rows)  # another process may have just written it
            hit = emb is not None
            if not hit:
                warnings = []
                emb = _compute(spec, task, split, hw, datasets, files, warnings, on_batch,
                               keep=lambda emb: _write_cache(folder, entry, emb, {
                                   "module": spec.name, "handle": spec.handle,
                                   "fingerprint": fingerprint, "resolution": list(hw),
                                   "value_range": spec.value_range,
                                   "output_key": spec.output_key, "data": task.fingerprint,
                                   "task": task.name, "split": split,
                                   "shape": list(emb.shape), "format": CACHE_FORMAT,
                                   "created": time_stamp(), "written_by": __version__,
                                   "warnings": warnings}))
    if hit and (not _repeat_warnings(entry, spec.name) or _probabilities_unsaid(entry, emb)):
        _keep_warnings(folder, entry, spec, files if files is not None else located(), emb)
    return EmbedResult(emb, hit, time.perf_counter() - start, hw, fingerprint, key)


def _key(spec, fingerprint, files, hw, task, split):
    """`cache_key` of `spec`'s embeddings of `split` at `hw`, its module's fingerprint being
    `fingerprint` (`files`: its ModuleFiles, None when recalled). The signature and output
    key are the ones the module is called through, with those that name its own default
    left out (`hub.locate.default_call`: saved_model.pb or a Keras file's config.json read,
    nothing loaded), so an entry writing out ``signature: serving_default``, its only
    ``output_key`` or a Keras file's default ``layer:`` (as `catalogue add` does) keys the
    same embeddings as one leaving them out. On a miss `_embed` also reads the entry of the
    key as hubensemble before b0774c6 / 5adff17 made it, the fields as written (the same
    call): such an entry was embedded again."""
    output_key = spec.output_key
    if files is not None:  # a Keras file's written-out default `layer:` too (`default_call`)
        from hubensemble.hub.locate import default_call

        fingerprint, output_key = default_call(files, output_key)
    elif output_key is not None:  # recalled: a SavedModel entry without layer or signature
        from hubensemble.savedmodel_calls import defaults_left_out

        _, output_key = defaults_left_out(fetched_path(spec), None, output_key)
    return cache_key(fingerprint, hw, spec.value_range, output_key, task.fingerprint, split)


def _about(entry) -> dict | None:
    """The cache entry's description (`entry`'s .json) as a dict, or None when it is absent,
    unreadable or not an object."""
    try:
        about = read_json(entry[:-len(".npy")] + ".json")
    except (OSError, ValueError):
        return None
    return about if isinstance(about, dict) else None


def _repeat_warnings(entry, name) -> bool:
    """Says again the load-time warnings kept with the cache entry at `entry` (its .json's
    "warnings"), naming the module `name` (the entry may have been written for the same files
    under another catalogue name): served from the cache, the module is not loaded, and its
    warnings (a Rescaling model fed [0, 1], a Softmax output) would come only in tune, or
    never. Returns False, saying nothing, when the description holds no such list: an entry
    written before the list was kept (hubensemble before 6acfef7), or a description that is
    missing or unreadable (`_keep_warnings` then finds them)."""
    from hubensemble.hub.notices import module_warning

    about = _about(entry)
    said = about.get("warnings") if about else None
    if not isinstance(said, list):
        return False
    was = f"module {about.get('module')}"
    for text in said:
        if isinstance(text, str):
            if text.startswith(was) and name:
                text = f"module {name}" + text[len(was):]
            module_warning(log, "%s", text)
    return True


def _probabilities_unsaid(entry, emb) -> bool:
    """True when the cached embeddings `emb` are class probabilities
    (`hub.outputs.probability_rows`) but the entry's kept warnings call the module nothing
    of the kind: an entry written before hubensemble warned of them (2026-12-05), whose
    module `_keep_warnings` then loads once to say so and keep it."""
    from hubensemble.hub.outputs import probability_rows

    if probability_rows(emb) is None:
        return False
    said = (_about(entry) or {}).get("warnings")
    return not any(isinstance(t, str) and "not features" in t for t in said or ())


def _keep_warnings(folder: CacheFolder, entry, spec, files, emb=None) -> None:
    """Loads `spec`'s module (`files`, located) once to say its load-time warnings, and keeps
    them in the description of the cache entry at `entry`, which held none: an entry written
    by hubensemble before 6acfef7 (or whose .json was lost) is served as it is — its
    embeddings are still valid — but its module's warnings would otherwise never be said
    again. Given the entry's embeddings `emb` (float [N, D]), whether they are class
    probabilities is said and kept too (`_probabilities_unsaid`: an entry from before that
    warning). The load costs what a miss's load does (not the embedding), once per such entry:
    the next hit reads the list. A module that no longer loads says nothing here (the stage
    that loads it says why); a description that cannot be written costs only this speed
    (`environment.cache_unwritable`)."""
    from hubensemble.hub import ModuleRuntime
    from hubensemble.hub.notices import captured

    try:
        with captured() as said:
            runtime = ModuleRuntime.from_spec(spec, files=files)
            if emb is not None:  # the cached embeddings: class probabilities are said too
                runtime.warn_if_probabilities(emb)
        del runtime
    except ModuleLoadError as e:
        log.debug("module %s (cache entry %s) could not be loaded for its warnings: %s",
                  spec.name, escaped(entry), e)
        return
    about = _about(entry) or {"module": spec.name, "handle": spec.handle,
                              "fingerprint": files.fingerprint, "format": CACHE_FORMAT}
    was, now = f"module {about.get('module')}", f"module {spec.name}"
    about["warnings"] = [was + t[len(now):] if t.startswith(now) else t for t in said]
    try:
        atomic_write_json(entry[:-len(".npy")] + ".json", about, sync=False)
    except OSError as e:
        cache_unwritable(folder, e, _GOING_ON)


def _memoable(spec):
    """True for a plain SavedModel handle without `layer:`/`signature:`, whose fingerprint is
    a function of its folder alone (what rank.located's memo is keyed by)."""
    from hubensemble.handles import source_kind

    return (source_kind(spec.handle) == "module" and not getattr(spec, "layer", None)
            and not getattr(spec, "signature", None))


def _remember(folder: CacheFolder, spec, files):
    if _memoable(spec) and files.kind == "saved-model":
        try:
            remember(folder.path, files, trust=spec.trust)
        except OSError as e:  # a hint: lost, the module is located (hashed) again next time
            cache_unwritable(folder, e, _GOING_ON)


def fetched_path(spec) -> str:
    """The local path of `spec`'s module (a remote one downloaded into the cache, its sha256
    checked: `hub.resolve`), for `samemodule.same_module_pairs`; raises as that does."""
    from hubensemble.hub import resolve

    return resolve(spec.handle, name=spec.name, sha256=spec.sha256)


def _recall(spec, cache_dir):
    """The remembered fingerprint of `spec`'s module (or None): resolved (and its sha256
    verified) by hub.resolve, the rest from rank.located's memo. Only plain SavedModel
    handles without `layer:`/`signature:` are remembered (the memo is keyed by folder); Keras
    files, applications and presets are located (hashed) every time."""
    from hubensemble.hub import resolve

    if not _memoable(spec):
        return None
    path = resolve(spec.handle, name=spec.name, sha256=spec.sha256)
    return recall(cache_dir, path, trust=spec.trust)


def _write_cache(folder: CacheFolder, entry, emb, about):
    try:
        atomic_save_npy(entry, emb)
        # The description is for people (what an entry is); no fsync for it.
        atomic_write_json(entry[:-len(".npy")] + ".json", about, sync=False)
    except OSError as e:  # a full or read-only disk: the embeddings are still good
        cache_unwritable(folder, e, _GOING_ON)


def changed_modules(recorded, specs, cache_dir=None) -> list[str]:
    """The names of `specs` whose module's content fingerprint now differs from the one
    `recorded` ({name: fingerprint}, e.g. ranking.json's rows) holds: a module changed in
    place since it was ranked (its embeddings, candidates and export are of the old one).

    The fingerprint is rank.located's memo when the files' identity is unchanged (a stat per
    file), else `hub.locate`'s hash of the files. A module without a recorded fingerprint,
    or that cannot be located now, is not judged here: the stage that loads it says why. A
    recorded key an older hubensemble computed for the same files by its rule
    (`hub.recorded_by_earlier_rule`: a run made before c251b02) is not a change.
    """
    from hubensemble.hub import locate_spec, recorded_by_earlier_rule

    folder = _folder(cache_dir)
    changed = []
    for spec in specs:
        before = recorded.get(spec.name)
        if not before:
            continue
        try:
            now = _recall(spec, folder.path)
            if now is None or now != before:
                files = locate_spec(spec)
                _remember(folder, spec, files)
                now = files.fingerprint
                if now != before and recorded_by_earlier_rule(before, files):
                    continue  # the same files, keyed by an older hubensemble's rule
        except ModuleLoadError:
            continue
        if now != before:
            changed.append(spec.name)
    return changed


def refuse_changed_modules(run_path, rows, specs, cache_dir=None, *, meta=None) -> None:
    """RunError naming the modules of `specs` whose files changed in place since the run at
    `run_path` (whose run.json is `meta`) ranked them (`changed_modules` against `rows`,
    ranking.json's "ok" rows): their ranking, candidates and members are of the old files (a
    new-user check: one sweep silently held trials of two versions of a module). Used by
    tune and distill, which take no --restart (`rerun.start_again` names the command
    that starts again); fit says the same in its own list of changed inputs."""
    names = changed_modules({r["name"]: r.get("fingerprint") for r in rows
                             if r.get("status") == "ok"}, specs, cache_dir)
    if names:
        from hubensemble.rerun import start_again

        raise RunError(f"the files of module{'s' if len(names) > 1 else ''} {', '.join(names)} "
                       f"changed since {run_path} ranked {'them' if len(names) > 1 else 'it'} "
                       "(ranking.json): its ranking and candidates are of the old files; "
                       f"restore them, or {start_again(run_path, meta or {})}")
