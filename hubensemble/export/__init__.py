"""Export: the chosen members as one SavedModel with serving signatures, metadata, reload check.

The sub-modules, one concern each:

* `layers` — the Keras layers: EnsembleLayer (the weighted average of paper 2.3),
  EvalResize (the evaluation resize inside the graph), `member_model`, `normalise_weights`;
* `saved` — the SavedModel's functions and signatures (EnsembleModule), the reload check,
  and `save_export` (temp folder, reload, swap into place through hubensemble.fileio);
* `inputs` — the inputs checked and decoded in the graph: serve_bytes' decode policy
  (`decode_image`, `check_headers`, `decode_each`), the images inputs' checks
  (`check_channels`, `check_pixel_range`) and the refusals' non-inlined paths (`refusal_path`);
* `warmup` — TF Serving's warmup file (assets.extra/tf_serving_warmup_requests: a TFRecord
  of PredictionLog protos, written without tensorflow_serving), its check on the reloaded
  model, and `add_warmup` (the file added to an export written before it was);
* `shared` — which members run one frozen backbone call (probes of one module at one size:
  `backbone_groups`) and the members' outputs with it (`member_outputs`);
* `stage` — `export_ensemble`: RUN/ensemble.json + its candidates -> members rebuilt from
  their weights (or retrained) -> `save_export`, returning an ExportResult;
* `retrain` — a member retrained with its recorded hyperparameters (`retrain_member`), and
  the test figures measured again on the retrained members (`test_after_retraining`);
* `adopt` — whether an export found where `fit` exports is the one its export stage would
  write (`fit_would_write`), kept and named in run.json then (`adopt_export`);
* `predict` and `format_predictions` (through the serve_bytes signature) live in
  `hubensemble.prediction`, which imports no TensorFlow until it loads the model; they are
  importable from here too.

Every public name is importable from ``hubensemble.export`` as before the split. The file
names and the metadata reader are TensorFlow-free, in `hubensemble.formats`.
"""

# TensorFlow first, by _tf's rule (without its C++ start-up notices)
from hubensemble._tf import keras, tensorflow  # noqa: F401 - Keras' backend checked
from hubensemble.export.layers import (EnsembleLayer, EvalResize, member_model,
                                       normalise_weights)
from hubensemble.export.saved import (RELOAD_TOLERANCE, EnsembleModule, ExportMember,
                                      check_reload, decode_image, max_abs_difference,
                                      save_export)
from hubensemble.export.stage import CHECK_BATCH, ExportResult, check_batch, export_ensemble
from hubensemble.export.warmup import add_warmup
from hubensemble.formats import (BYTES_SIGNATURE, EXPORT_FORMAT, EXPORT_FORMAT_VERSION,
                                 MEMBERS_SIGNATURE, METADATA_ASSET, SERVING_SIGNATURE, is_export)
from hubensemble.errors import checks_keywords
from hubensemble.formats import read_export_metadata
from hubensemble.prediction import PREDICT_BATCH, format_predictions, predict


@checks_keywords
def read_metadata(model_dir, *, strict: bool = True) -> dict:
    """An export's metadata asset, MODEL_DIR/assets/hubensemble.json, as a dict ({} when
    absent): `formats.read_export_metadata`, the one reader, under the name this package
    offers. A function of its own so that a mistyped keyword names the one called
    (`read_metadata(pth=…)` said "read_export_metadata() got an unexpected keyword
    argument"). Raises HubensembleError as that reader does (`strict`)."""
    return read_export_metadata(model_dir, strict=strict)


__all__ = [
    "BYTES_SIGNATURE", "CHECK_BATCH", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION",
    "EnsembleLayer", "EnsembleModule", "EvalResize", "ExportMember", "ExportResult",
    "MEMBERS_SIGNATURE", "METADATA_ASSET", "PREDICT_BATCH", "RELOAD_TOLERANCE",
    "SERVING_SIGNATURE", "add_warmup", "check_batch", "check_reload", "decode_image",
    "export_ensemble", "format_predictions", "is_export", "max_abs_difference", "member_model",
    "normalise_weights", "predict", "read_metadata", "save_export",
]
