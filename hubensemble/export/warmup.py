"""TF Serving's warmup file of an export: assets.extra/tf_serving_warmup_requests.

TF Serving runs the requests in `SAVED_MODEL/assets.extra/tf_serving_warmup_requests` (a
TFRecord file, one `tensorflow.serving.PredictionLog` protobuf per record, at most 1000) when
it loads a model version, before the version takes traffic: the first requests then skip the
lazy start-up of TensorFlow's runtime (https://www.tensorflow.org/tfx/serving/saved_model_warmup).
A request of the file that fails makes the version fail to load, so the export runs each one
through the reloaded model before it puts the folder in place (`run_warmup`).

The `tensorflow_serving` package that defines PredictionLog is not a dependency: the records
are written here in protobuf's wire format, field numbers as in tensorflow_serving/apis
(prediction_log.proto: PredictionLog.predict_log = 6; PredictLog.request = 1;
predict.proto: PredictRequest.model_spec = 1, inputs = 2 (map<string, TensorProto>);
model.proto: ModelSpec.signature_name = 3), with TensorFlow's own TensorProto
(`tf.make_tensor_proto`) as each input. `tf.saved_model.load`, `saved_model_cli` and
TF Hub ignore assets.extra. Checked against tensorflow-serving-api 2.21.0 (installed apart):
its `prediction_log_pb2.PredictionLog` parses every record of the file, and serialises the
same requests to the same bytes. It is not a test extra either: it requires
tensorflow>=2.21 and protobuf>=6.31.1, where hubensemble supports TensorFlow 2.20 on, so
`pip install .[test]` could change the TensorFlow under test; tests/test_export.py parses
the file with the same messages built from the .proto field numbers (`serving_protos`).

The images are synthetic (a colour gradient, no image of the run's data): warmup needs the
requests' shapes and dtypes, not their content.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import tensorflow as tf

from hubensemble.data.decode import op_error_reason
from hubensemble.errors import RunError, checks_keywords
from hubensemble.fileio import tf_path
from hubensemble.formats import (BYTES_SIGNATURE, MEMBERS_SIGNATURE, SERVING_SIGNATURE,
                                 WARMUP_FILE)


def warmup_image(height: int, width: int) -> np.ndarray:
    """A synthetic uint8 [height, width, 3] image (a smooth colour gradient): what the warmup
    requests hold instead of an image of the run's data."""
    y = np.linspace(0.0, 1.0, max(int(height), 1), dtype=np.float64)[:, None]
    x = np.linspace(0.0, 1.0, max(int(width), 1), dtype=np.float64)[None, :]
    rgb = np.stack(np.broadcast_arrays(x, y, (x + y) / 2), axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def warmup_requests(height: int, width: int) -> list[tuple[str, dict]]:
    """The export's warmup requests, [(signature name, {input name: numpy array})]: one
    image of `height` x `width` (`warmup_image`) through serving_default and serve_members
    (float32 [1, H, W, 3] in [0, 1]) and, as a PNG and a JPEG, through serve_bytes (string
    [2]): every signature and both common decoders, as clients call them."""
    image = warmup_image(height, width)
    pixels = (image.astype(np.float32) / 255.0)[None]
    png = tf.io.encode_png(image).numpy()
    jpeg = tf.io.encode_jpeg(image, quality=90).numpy()
    return [(SERVING_SIGNATURE, {"images": pixels}),
            (BYTES_SIGNATURE, {"image_bytes": np.array([png, jpeg], dtype=object)}),
            (MEMBERS_SIGNATURE, {"images": pixels})]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2: a string, bytes or a message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(signature: str, inputs: dict) -> bytes:
    """The serialised `tensorflow.serving.PredictionLog` of a Predict request of `signature`
    with `inputs` ({input name: array-like}, each made a TensorProto by
    tf.make_tensor_proto), as `PredictionLog(predict_log=PredictLog(request=PredictRequest(
    model_spec=ModelSpec(signature_name=signature), inputs=...)))` serialises (the model's
    name is left empty: TF Serving's warmup does not read it)."""
    model_spec = _field(3, signature.encode("utf-8"))
    request = _field(1, model_spec)
    for name in sorted(inputs):  # map entries: key = 1, value = 2
        tensor = tf.make_tensor_proto(inputs[name]).SerializeToString()
        request += _field(2, _field(1, name.encode("utf-8")) + _field(2, tensor))
    return _field(6, _field(1, request))


def write_warmup(saved_model_dir, requests) -> str:
    """Writes `requests` ([(signature, inputs)], e.g. `warmup_requests`) as the TFRecord file
    SAVED_MODEL_DIR/assets.extra/tf_serving_warmup_requests and returns its path. The
    folder is the export's temp folder (it is put in place whole), so the file is written
    directly."""
    path = os.path.join(os.fspath(saved_model_dir), WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_requests(path, requests)
    return path


def write_requests(path, requests) -> None:
    """Writes `requests` ([(signature, inputs)]) to the TFRecord file `path`, one
    `prediction_log` each, in order. `path` is Python's name of the file; TensorFlow is given
    it in its form (fileio.tf_path: under LC_ALL=C a non-ASCII folder's name was refused
    with a UnicodeEncodeError)."""
    with tf.io.TFRecordWriter(tf_path(path)) as writer:
        for signature, inputs in requests:
            writer.write(prediction_log(signature, inputs))


def run_warmup(loaded, requests, *, outcome: str = "so the export was deleted") -> None:
    """Runs each of `requests` ([(signature, inputs)]) through the signatures of `loaded`
    (a tf.saved_model.load result), as TF Serving runs the warmup file when it loads the
    model. Raises RunError naming the signature and TensorFlow's reason when one fails: TF
    Serving would refuse to load the version (`outcome` says what was done about it)."""
    for signature, inputs in requests:
        try:
            loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        except (KeyError, tf.errors.OpError) as e:
            reason = op_error_reason(e) if isinstance(e, tf.errors.OpError) else "no such signature"
            raise RunError(f"the export's TF Serving warmup request for {signature} fails on "
                           f"the reloaded SavedModel ({reason}); TF Serving "
                           f"would not load it, {outcome}. Report it with "
                           "`hubensemble --version`") from e


#: The warmup images' side for an export whose members name no evaluation size.
DEFAULT_SIZE = 224


@checks_keywords
def add_warmup(model_dir) -> str | None:
    """Adds TF Serving's warmup file to the export at `model_dir` that has none (one written
    before the file was, which TF Serving loaded without warming up), without exporting it
    again: returns the file's path, or None when the export has one already (its own, or
    one its user put there: never replaced).

    The requests are the export's (`warmup_requests`), for the signatures the SavedModel has,
    of images of its largest member's evaluation size (metadata "members" "eval_size"; else
    DEFAULT_SIZE), run on the loaded model first (`run_warmup`) and written in a temp folder,
    then moved into place (`_put_requests`: a dead writer's temp folder is deleted). The
    metadata asset is left as it was: its sha256 identifies the export to a distilled student
    and an evaluation (`formats.export_identity`), so it names no `tf_serving_warmup`. TF
    Serving reads the file when it loads a version: serve the folder as a new version (or
    restart the server). Raises HubensembleError for a folder without
    hubensemble's metadata (`formats.read_export_metadata`: also a damaged one), RunError
    when a request fails on the model (nothing written).
    """
    from hubensemble.errors import HubensembleError
    from hubensemble.formats import is_export, read_export_metadata
    from hubensemble.lockwords import option_word
    from hubensemble.text import absolute

    model_dir = absolute(os.fspath(model_dir))
    path = os.path.join(model_dir, WARMUP_FILE)
    if os.path.lexists(path):
        return None
    meta = read_export_metadata(model_dir)
    if not is_export(model_dir):
        what = ("holds no export hubensemble wrote (no assets/hubensemble.json)"
                if os.path.isdir(model_dir) else "is not a folder")
        raise HubensembleError(f"{model_dir} {what}: pass the folder of one to "
                               f"{option_word('--add-warmup', 'add_warmup')}, e.g. RUN/export")
    sizes = [m.get("eval_size") for m in meta.get("members") or [] if isinstance(m, dict)]
    size = max([int(s) for s in sizes if isinstance(s, int) and s > 0] or [DEFAULT_SIZE])
    loaded = tf.saved_model.load(tf_path(model_dir))
    requests = [(name, inputs) for name, inputs in warmup_requests(size, size)
                if name in loaded.signatures]  # an older export may have fewer signatures
    run_warmup(loaded, requests, outcome="so no warmup file was added")
    _put_requests(path, requests)
    return path


def _put_requests(path, requests) -> None:
    """Writes `requests` to `path` whole or not at all: in a temp folder beside it named by
    this process (`fileio.temp_dir_for`), then moved into place. A dead writer's temp folder
    there, or an older hubensemble's temp file (``tf_serving_warmup_requests.tmp-PID``), is
    deleted first (`fileio.remove_stale_temp_dirs`, `fileio.writer_gone`): the temp file was
    `{path}.tmp-PID` in the export's assets.extra, and one a killed process left stayed
    there for good (an extra file of the export, which fit's recorded file list then calls
    a change)."""
    import shutil

    from hubensemble.fileio import remove_stale_temp_dirs, temp_dir_for, writer_gone

    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temp_dirs(path)
    for entry in os.listdir(folder):  # an older hubensemble's, named by its pid alone
        pid = entry[len(name) + len(".tmp-"):] if entry.startswith(f"{name}.tmp-") else ""
        if pid.isdigit() and writer_gone(pid, ours_gone=True):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, entry))
    tmp = temp_dir_for(path)
    os.makedirs(tmp)
    try:
        write_requests(os.path.join(tmp, name), requests)
        os.replace(os.path.join(tmp, name), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_warmup_words(model_dir) -> str:
    """`hubensemble export --add-warmup MODEL`: `add_warmup` on `model_dir`, and what it did
    in words (the file added, and when TF Serving reads it; or the file there kept). Raises
    as `add_warmup`."""
    from hubensemble.text import escaped

    path = add_warmup(model_dir)
    if path is None:
        return (f"{escaped(os.fspath(model_dir))} has TF Serving's warmup file already "
                f"({WARMUP_FILE}): kept as it is")
    return (f"added TF Serving's warmup file: {escaped(path)} (its metadata is left as it "
            "was); TF Serving reads it when it loads a version: serve the folder as a new "
            "version, or restart the server")
