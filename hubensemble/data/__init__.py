"""Downstream tasks: data specs (tfds:, folder:, npz:, sklearn:digits) -> a validated `Task`.

The package, by concern:

* `task`: the records, `Split` (uint8 RGB images [N, H, W, 3] or a list of [H, W, 3], int64
  labels [N]) and `Task` (class names, train / val / test, `Task.dataset` for tf.data);
* `names`: the split names and the class-name rule of every source (`check_class_names`);
* `decode`: the decode policy on the Python side, `decode_bytes`, `read_image`,
  `servable_bytes` / `serving_blob` (what predict sends to serve_bytes), `to_rgb_uint8`;
  `graph` (TensorFlow, imported when a file is decoded):
  `decode_pixels`, the same policy as TensorFlow ops, also inside the export; `sniff`: the
  format signatures both use;
* `duplicates`: exact duplicates by decoded pixels (`Task.duplicates`, `Task.groups`,
  `drop_duplicates`);
* `splits`: split sizes per class and the seeded stratified split;
* `validate`: `validate_task`, the checks that make a task usable by the method;
* `specs`: the scheme registry `SCHEMES`, `parse_spec`, `check_spec` (the refusals made
  before any data is read), `load_task` and `load_test_set`
  (what `evaluate` reads);
* one loader per scheme: `folder`, `npz`, `digits` (sklearn:digits), `tfds`.
* `decodecache`: the decoded-image cache of `folder:` files (each decoded once across loads);
  `folderwords`: the folder loader's refusals and carve words.

Every name is importable from `hubensemble.data` itself, as before the split.
"""

from hubensemble.data.decode import (
    Decoded, UnreadableImage, _Unreadable, check_16bit, check_identifiable, composite_on_white,
    decode_bytes, decode_image_bytes, exif_orientation, op_error_reason, read_image,
    read_image_file, servable_bytes, serving_blob, to_rgb_uint8,
)
from hubensemble.data.duplicates import drop_duplicates, pixel_key
from hubensemble.data.loading import IGNORED_NAMES, LoadOptions
from hubensemble.data.sniff import GRAPH_FORMATS, sniff
from hubensemble.data.specs import SCHEMES, check_spec, load_task, load_test_set, parse_spec
from hubensemble.data.splits import MIN_TRAIN_PER_CLASS, split_counts, stratified_split
from hubensemble.data.task import SPLIT_NAMES, Split, Task
from hubensemble.data.tfds import NO_FLIP_TFDS, SYNTHETIC_TFDS, VTAB_SPLITS
from hubensemble.data.validate import validate_task
from hubensemble.errors import DataError

__all__ = [
    "DataError", "Decoded", "GRAPH_FORMATS", "IGNORED_NAMES", "LoadOptions", "MIN_TRAIN_PER_CLASS",
    "NO_FLIP_TFDS", "SCHEMES", "SPLIT_NAMES", "SYNTHETIC_TFDS", "Split", "Task", "UnreadableImage",
    "VTAB_SPLITS", "check_16bit", "check_identifiable", "check_spec", "composite_on_white",
    "decode_bytes", "decode_image_bytes", "drop_duplicates", "exif_orientation", "load_task",
    "load_test_set", "op_error_reason", "parse_spec", "pixel_key", "read_image",
    "read_image_file", "servable_bytes", "serving_blob", "sniff", "split_counts",
    "stratified_split", "to_rgb_uint8", "validate_task",
    "_Unreadable",
]
