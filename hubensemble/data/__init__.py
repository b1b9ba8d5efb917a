"""Downstream tasks: data specs (tfds:, folder:, npz:, sklearn:digits) -> a validated `Task`.

The package, by concern:

* `task`: the records, `Split` (uint8 RGB images [N, H, W, 3] or a list of [H, W, 3], int64
  labels [N]) and `Task` (class names, train / val / test, `Task.dataset` for tf.data);
* `decode`: the decode policy, `to_rgb_uint8`, `decode_image_bytes`, `read_image_file`;
* `splits`: split sizes per class and the seeded stratified split;
* `validate`: `validate_task`, the checks that make a task usable by the method;
* `specs`: the scheme registry `SCHEMES`, `parse_spec` and `load_task`;
* one loader per scheme: `folder`, `npz`, `digits` (sklearn:digits), `tfds`.

Every name is importable from `hubensemble.data` itself, as before the split.
"""

from hubensemble.data.decode import (
    UnreadableImage, _Unreadable, decode_image_bytes, read_image_file, to_rgb_uint8,
)
from hubensemble.data.loading import LoadOptions
from hubensemble.data.specs import SCHEMES, load_task, parse_spec
from hubensemble.data.splits import MIN_TRAIN_PER_CLASS, split_counts, stratified_split
from hubensemble.data.task import SPLIT_NAMES, Split, Task
from hubensemble.data.tfds import NO_FLIP_TFDS, SYNTHETIC_TFDS, VTAB_SPLITS
from hubensemble.data.validate import validate_task
from hubensemble.errors import DataError

__all__ = [
    "DataError", "LoadOptions", "MIN_TRAIN_PER_CLASS", "NO_FLIP_TFDS", "SCHEMES", "SPLIT_NAMES",
    "SYNTHETIC_TFDS", "Split", "Task", "UnreadableImage", "VTAB_SPLITS", "decode_image_bytes",
    "load_task", "parse_spec", "read_image_file", "split_counts", "stratified_split",
    "to_rgb_uint8", "validate_task", "_Unreadable",
]
