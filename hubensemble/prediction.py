"""predict: the top classes of image files through an export's serve_bytes signature."""

from __future__ import annotations

import json
import logging
import os
from typing import Sequence

import numpy as np

from hubensemble import options
from hubensemble.data.decode import UnreadableImage, decode_bytes
from hubensemble.data.sniff import GRAPH_FORMATS, sniff
from hubensemble.errors import HubensembleError, reraise_stop
from hubensemble.formats import (BYTES_SIGNATURE, check_saved_model_folder, load_saved_model,
                                 read_export_metadata)

log = logging.getLogger(__name__)

#: Images per serve_bytes call in `predict`.
PREDICT_BATCH = 32

#: An export's assets/hubensemble.json as a dict, {} when absent: the one reader
#: (`hubensemble.formats.read_export_metadata`), under the name export has always used.
read_metadata = read_export_metadata


_PREDICT = options.defaults_for("predict")


def predict(model_dir, image_paths: Sequence, *, top: int = _PREDICT["top"],
            skip_unreadable: bool = _PREDICT["skip_unreadable"],
            batch_size: int = PREDICT_BATCH) -> list[dict]:
    """Top classes of image files through the export's serve_bytes signature.

    Returns one dict per image, in order: {"path", "top": [{"rank" (1-based), "class_id"
    (int in [0, C)), "class_name" (from the metadata asset, else the id as text),
    "probability" (float in [0, 1])}, ...]} (at most `top` entries, most probable first;
    equal probabilities keep class order). Class names are the export's own (its metadata),
    by the model's output index. Files are decoded by the decode policy of training
    (`hubensemble.data.decode`) and run through serve_bytes, `batch_size` at a time, so any
    mix of sizes works and a file gets the pixels it had in training: JPEG, PNG, GIF, BMP and
    WebP bytes go to serve_bytes as they are (it decodes them with the same function);
    TIFF and other formats Pillow reads, which serve_bytes cannot decode, are decoded here by
    the kept decoder and sent as a lossless PNG of those pixels.

    Raises HubensembleError for `top` < 1, a folder without saved_model.pb or without the
    serve_bytes signature, and for a file that cannot be read or decoded (naming it, with
    the real reason: what the file is and why); with `skip_unreadable` such a file gets
    {"path", "error"} instead and the others go on.
    """
    top = int(top)
    if top < 1:
        raise HubensembleError(f"--top must be >= 1, got {top}")
    model_dir = check_saved_model_folder(model_dir)
    if not read_export_metadata(model_dir):  # predict needs its class names and serve_bytes
        raise HubensembleError(f"{model_dir} is a SavedModel that `hubensemble export` did not "
                               "write (no assets/hubensemble.json); predict needs an export "
                               "(RUN/export); for any SavedModel use `hubensemble evaluate`")
    results = [None] * len(image_paths)
    files = {}  # read before TensorFlow loads: a mistyped path is refused at once
    decoded = {}  # the files decoded then (formats outside the graph's)
    for i, path in enumerate(image_paths):
        try:
            with open(path, "rb") as f:
                files[i] = f.read()
        except IsADirectoryError:  # a folder of images is not one: name the way to pass them
            results[i] = _unreadable(path, f"it is a folder; pass its image files instead "
                                     f"(e.g. {os.path.join(path, '*.jpg')})", skip_unreadable)
        except OSError as e:
            reason = (f"a broken link (to {os.readlink(path)})"  # the folder loader's words
                      if os.path.islink(path) and not os.path.exists(path) else
                      f"cannot read it: {e.strerror or e}")
            results[i] = _unreadable(path, reason, skip_unreadable)
        if i in files and sniff(files[i]) not in GRAPH_FORMATS:
            # Empty, not an image, or a format only Pillow reads: decode_bytes refuses (or
            # decodes) these without TensorFlow, so a text file is refused at once, not after
            # the model loaded. A readable one's pixels become serve_bytes' PNG below.
            try:
                decoded[i] = decode_bytes(files[i])
            except UnreadableImage as e:
                reraise_stop(e)
                del files[i]
                results[i] = _unreadable(path, str(e), skip_unreadable)
    from hubensemble import _tf

    if _tf.quiet():  # the command line's (not --verbose): without TensorFlow's C++ notices
        _tf.import_quietly()
    import tensorflow as tf

    loaded = load_saved_model(model_dir)
    if BYTES_SIGNATURE not in loaded.signatures:
        has = ", ".join(loaded.signatures)
        raise HubensembleError(f"{model_dir} has no {BYTES_SIGNATURE} signature ("
                               f"{'it has ' + has if has else 'it has no signature'}); export "
                               "it again with `hubensemble export`")
    serve = loaded.signatures[BYTES_SIGNATURE]
    names = read_export_metadata(model_dir).get("class_names")

    from hubensemble.data.decode import op_error_reason, servable_bytes

    readable = []
    for i in list(files):
        data, path = files.pop(i), image_paths[i]  # the bytes go as their blob is made
        try:
            blob, _ = servable_bytes(data, decoded.pop(i, None))
        except UnreadableImage as e:
            reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
            results[i] = _unreadable(path, str(e), skip_unreadable)
            continue
        readable.append((i, blob))

    for lo in range(0, len(readable), max(1, int(batch_size))):
        chunk = readable[lo:lo + batch_size]
        try:
            probs = _run_bytes(serve, [d for _, d in chunk])
        except tf.errors.InvalidArgumentError:
            # The decode policy accepted these files, so this is rare (an export made by
            # another version): find the file(s) one by one, with the model's reason.
            probs = []
            for i, data in chunk:
                try:
                    probs.append(_run_bytes(serve, [data])[0])
                except tf.errors.InvalidArgumentError as e:
                    reason = f"the model's serve_bytes refused it ({op_error_reason(e)})"
                    results[i] = _unreadable(image_paths[i], reason, skip_unreadable)
                    probs.append(None)
        for (i, _), p in zip(chunk, probs):
            if p is not None:
                results[i] = _top_classes(image_paths[i], p, top, names)
    return results


def _run_bytes(serve, blobs):
    import tensorflow as tf

    out = serve(image_bytes=tf.constant(blobs, tf.string))
    return out["probabilities"].numpy()


def _unreadable(path, reason, skip):
    if not skip:
        raise HubensembleError(f"{path}: {reason}; fix or remove the file (or pass "
                               "--skip-unreadable, skip_unreadable=True in Python)")
    log.warning("%s: %s; skipped", path, reason)
    return {"path": os.fspath(path), "error": reason}


def _top_classes(path, probs, top, names):
    order = np.argsort(-np.asarray(probs, np.float64), kind="stable")[:top]
    rows = []
    for rank, c in enumerate(order, 1):
        name = names[c] if names and c < len(names) else str(int(c))
        rows.append({"rank": rank, "class_id": int(c), "class_name": str(name),
                     "probability": float(probs[c])})
    return {"path": os.fspath(path), "top": rows}


def format_predictions(results: Sequence[dict], as_json: bool = False) -> str:
    """The CLI's output of `predict` results: JSON (the list as `predict` returns it) or a
    small text block per image (its path, then "  rank. class  probability" lines, or
    "  error: reason")."""
    if as_json:
        return json.dumps(list(results), indent=2)
    lines = []
    for r in results:
        lines.append(str(r["path"]))
        if "error" in r:
            lines.append(f"  error: {r['error']}")
            continue
        width = max((len(t["class_name"]) for t in r["top"]), default=0)
        for t in r["top"]:
            lines.append(f"  {t['rank']}. {t['class_name']:<{width}}  {t['probability']:.4f}")
    return "\n".join(lines)
