"""VTAB-1k's 19 tasks as google-research/task_adaptation defines them (task_adaptation/data/*.py):
the label functions, the task table (`TASK_LIST`, `TASKS`, `ALIASES`) and `select_tasks`. Part
of tools/vtab.py (its runner imports this module from the same folder); see docs/vtab.md."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

GROUPS = ("natural", "specialised", "structured")
GROUP_TITLES = {"natural": "Natural", "specialised": "Specialised", "structured": "Structured"}
#: Other spellings of a group's name (the VTAB paper writes "Specialized").
GROUP_SPELLINGS = {"specialized": "specialised"}


# --------------------------------------------------------------------------- label functions
#
# Each maps ONE tfds example (a dict of numpy values, nested dicts for Sequence features) to an
# integer class, exactly as the task_adaptation preprocess function of that task does in
# TensorFlow. -1 means "no class": the loader rejects it with an error naming the task.


def _bin_by_thresholds(value, thresholds) -> int:
    """task_adaptation's `tf.reduce_max(tf.where((thrs - value) < 0))`: the last i with
    thrs[i] < value, compared in float32 (TF casts the numpy thresholds to the value's
    dtype); -1 when no threshold lies below the value."""
    below = np.flatnonzero(np.asarray(thresholds, np.float32) < np.float32(value))
    return int(below[-1]) if below.size else -1


def _group_classes(value, num_original: int, num_classes: int) -> int:
    """dsprites' grouping of neighbouring values: floor(value / (num_original / num_classes))
    in float32, as `tf.math.floordiv(tf.cast(v, tf.float32), class_division_factor)`."""
    factor = np.float32(float(num_original) / num_classes)
    return int(np.floor(np.float32(value) / factor))


def label(example) -> int:
    """The tfds `label` ClassLabel unchanged (natural and specialised tasks, dmlab)."""
    return int(example["label"])


# clevr.py: `tf.size(x["objects"]["size"]) - 3`; CLEVR scenes hold 3..10 objects -> 8 classes.
def clevr_count(example) -> int:
    """Number of objects in the scene minus 3 (3..10 objects -> classes 0..7)."""
    return int(np.size(example["objects"]["size"])) - 3


# clevr.py `_closest_object_preprocess_fn`: depth (pixel_coords[:, 2]) of the nearest object.
CLEVR_DISTANCE_THRESHOLDS = (0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0)


def clevr_closest_distance(example) -> int:
    """Depth of the closest object binned at 0 / 8 / 8.5 / 9 / 9.5 / 10 / 100 -> 6 classes."""
    coords = np.asarray(example["objects"]["pixel_coords"], np.float32).reshape(-1, 3)
    if not len(coords):
        return -1
    return _bin_by_thresholds(coords[:, 2].min(), CLEVR_DISTANCE_THRESHOLDS)


# kitti.py `_closest_vehicle_distance_pp`: z (metres ahead of the camera) of the nearest
# Car / Van / Truck (object types 0, 1, 2); a scene without one counts as 1000 m.
KITTI_VEHICLE_THRESHOLDS = (-100.0, 8.0, 20.0, 999.0)
KITTI_VEHICLE_TYPES = 3  # ClassLabel order: Car, Van, Truck, Pedestrian, Person_sitting, …
KITTI_NO_VEHICLE = 1000.0


def kitti_closest_vehicle_distance(example) -> int:
    """Closest vehicle's distance: <= 8 m, 8-20 m, 20-999 m, or no vehicle -> 4 classes."""
    objects = example["objects"]
    types = np.asarray(objects["type"]).reshape(-1)
    z = np.asarray(objects["location"], np.float32).reshape(-1, 3)[:, 2]
    vehicle_z = np.concatenate([z[types < KITTI_VEHICLE_TYPES],
                                np.array([KITTI_NO_VEHICLE], np.float32)])
    return _bin_by_thresholds(vehicle_z.min(), KITTI_VEHICLE_THRESHOLDS)


# dsprites.py: `predicted_attribute` grouped into `num_classes=16` classes.
def dsprites_x_position(example) -> int:
    """x position, 32 values grouped in pairs -> 16 classes."""
    return _group_classes(example["label_x_position"], 32, 16)


def dsprites_orientation(example) -> int:
    """Orientation, 40 values grouped by 2.5 -> 16 classes."""
    return _group_classes(example["label_orientation"], 40, 16)


# smallnorb.py: `label=tensors[predicted_attribute]`.
def smallnorb_azimuth(example) -> int:
    """Azimuth, 18 classes (0, 20, …, 340 degrees)."""
    return int(example["label_azimuth"])


def smallnorb_elevation(example) -> int:
    """Elevation, 9 classes (30 to 70 degrees in steps of 5)."""
    return int(example["label_elevation"])


# --------------------------------------------------------------------------- task table


@dataclass(frozen=True)
class VtabTask:
    """One VTAB-1k task as task_adaptation defines it.

    Splits (`cut`), as task_adaptation's "train800" / "val200" / "test":
      "official":   train[:800] / validation[:200] / test
      "train_tail": the data set's val split is the tail of train from
                    n = train_percent * N // 100 (N = tfds train size):
                    train[:800] / train[n:n+200] / `test_split`
      "train_only": only a train split: train n = train_percent * N // 100,
                    val v = val_percent * N // 100: train[:800] / train[n:n+200] / train[n+v:]
      "test_half":  (smallnorb) train[:800] / test[:200] / test[50%:]
    """

    name: str                  # the paper's Table 4 column name
    key: str                   # task_adaptation registry string
    group: str                 # natural | specialised | structured
    tfds_name: str
    config: str | None
    versions: tuple            # tried in order; the first one prepared in --data-dir is used
    cut: str
    num_classes: int
    label_fn: Callable
    features: tuple = ("label",)   # the tfds features label_fn reads
    train_percent: int = 0
    val_percent: int = 0
    train_size: int | None = None  # tfds train size task_adaptation's offsets were cut from
    test_split: str = "test"
    image_key: str = "image"
    pixel_scale: int = 1       # dsprites stores 0/1 pixels; task_adaptation multiplies by 255
    synthetic: bool = False    # no colour augmentation (paper A.3)
    flip: bool = True          # left/right flips keep the label
    min_per_class: int = 2     # fewest train[:800] examples a class may have
    class_names: tuple | None = None
    note: str = ""

    @property
    def tfds_spec(self) -> str:
        return self.tfds_name + (f"/{self.config}" if self.config else "")

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["label_fn"] = self.label_fn.__name__
        d["versions"] = list(self.versions)
        d["features"] = list(self.features)
        d["class_names"] = list(self.class_names) if self.class_names else None
        return d


def _names(prefix, n):
    return tuple(f"{prefix}{i}" for i in range(n))


_NATURAL = dict(group="natural")
_SPECIALISED = dict(group="specialised")
# Rendered scenes (paper A.3: no colour distortion on artificial data; smallnorb is grey
# studio shots of toys, where hue/saturation jitter only adds colour that is never there).
_STRUCTURED_SYNTH = dict(group="structured", synthetic=True)

TASK_LIST = (
    # Natural ----------------------------------------------------------------------------
    VtabTask("caltech101", "caltech101", tfds_name="caltech101", config=None,
             versions=("3.*.*",), cut="train_tail", train_percent=90, train_size=3060,
             num_classes=102, label_fn=label, min_per_class=0,
             note="102 classes, train split shuffled by tfds: a class can miss train[:800]",
             **_NATURAL),
    VtabTask("cifar100", "cifar(num_classes=100)", tfds_name="cifar100", config=None,
             versions=("3.*.*",), cut="train_tail", train_percent=90, train_size=50000,
             num_classes=100, label_fn=label, min_per_class=0,
             note="100 classes in 800 examples: a class can have 0 or 1", **_NATURAL),
    VtabTask("dtd", "dtd", tfds_name="dtd", config=None, versions=("3.*.*",), cut="official",
             num_classes=47, label_fn=label, **_NATURAL),
    VtabTask("flowers", "oxford_flowers102", tfds_name="oxford_flowers102", config=None,
             versions=("2.*.*",), cut="official", num_classes=102, label_fn=label,
             min_per_class=0, note="102 classes in 800 examples", **_NATURAL),
    VtabTask("pets", "oxford_iiit_pet", tfds_name="oxford_iiit_pet", config=None,
             versions=("3.*.*", "4.*.*"), cut="train_tail", train_percent=80,
             train_size=3680, num_classes=37, label_fn=label,
             note="task_adaptation used 3.x; tfds >= 4.9 only builds 4.0.0 (fixed corrupt "
                  "images, same 3,680 / 3,669 examples)", **_NATURAL),
    VtabTask("sun397", "sun397", tfds_name="sun397", config="tfds", versions=("4.*.*",),
             cut="official", num_classes=397, label_fn=label, min_per_class=0,
             note="397 classes in 800 examples: many classes have none", **_NATURAL),
    VtabTask("svhn", "svhn", tfds_name="svhn_cropped", config=None, versions=("3.*.*",),
             cut="train_tail", train_percent=90, train_size=73257, num_classes=10,
             label_fn=label, flip=False, note="digits: no flips", **_NATURAL),
    # Specialised ------------------------------------------------------------------------
    VtabTask("camelyon", "patch_camelyon", tfds_name="patch_camelyon", config=None,
             versions=("2.*.*",), cut="official", num_classes=2, label_fn=label,
             **_SPECIALISED),
    VtabTask("eurosat", "eurosat", tfds_name="eurosat", config="rgb", versions=("2.*.*",),
             cut="train_only", train_percent=60, val_percent=20, train_size=27000,
             num_classes=10, label_fn=label, **_SPECIALISED),
    VtabTask("resisc45", "resisc45", tfds_name="resisc45", config=None, versions=("3.*.*",),
             cut="train_only", train_percent=60, val_percent=20, train_size=31500,
             num_classes=45, label_fn=label, note="tfds needs a manual download",
             **_SPECIALISED),
    VtabTask("retino", 'diabetic_retinopathy(config="btgraham-300")',
             tfds_name="diabetic_retinopathy_detection", config="btgraham-300",
             versions=("3.*.*",), cut="official", num_classes=5, label_fn=label,
             note="tfds needs a manual download (Kaggle)", **_SPECIALISED),
    # Structured -------------------------------------------------------------------------
    VtabTask("clever.count", 'clevr(task="count_all")', tfds_name="clevr", config=None,
             versions=("3.*.*",), cut="train_tail", train_percent=90, train_size=70000,
             test_split="validation", num_classes=8, label_fn=clevr_count,
             features=("objects",), class_names=tuple(f"{n} objects" for n in range(3, 11)),
             note="test = the tfds validation split (CLEVR's test has no scene labels)",
             **_STRUCTURED_SYNTH),
    VtabTask("clever.closest", 'clevr(task="closest_object_distance")', tfds_name="clevr",
             config=None, versions=("3.*.*",), cut="train_tail", train_percent=90,
             train_size=70000, test_split="validation", num_classes=6,
             label_fn=clevr_closest_distance, features=("objects",),
             class_names=("depth<=8", "8-8.5", "8.5-9", "9-9.5", "9.5-10", "10-100"),
             note="test = the tfds validation split", **_STRUCTURED_SYNTH),
    VtabTask("dmlab", "dmlab", tfds_name="dmlab", config=None, versions=("2.0.1",),
             cut="official", num_classes=6, label_fn=label, **_STRUCTURED_SYNTH),
    VtabTask("dsprites.xpos",
             'dsprites(predicted_attribute="label_x_position",num_classes=16)',
             tfds_name="dsprites", config=None, versions=("2.*.*",), cut="train_only",
             train_percent=80, val_percent=10, train_size=737280, num_classes=16,
             label_fn=dsprites_x_position, features=("label_x_position",), pixel_scale=255,
             flip=False, class_names=tuple(f"x{2 * i}-{2 * i + 1}" for i in range(16)),
             note="position label: no flips", **_STRUCTURED_SYNTH),
    VtabTask("dsprites.orient",
             'dsprites(predicted_attribute="label_orientation",num_classes=16)',
             tfds_name="dsprites", config=None, versions=("2.*.*",), cut="train_only",
             train_percent=80, val_percent=10, train_size=737280, num_classes=16,
             label_fn=dsprites_orientation, features=("label_orientation",), pixel_scale=255,
             flip=False, class_names=_names("orientation bin ", 16),
             note="orientation label: a mirror image has another orientation, no flips",
             **_STRUCTURED_SYNTH),
    VtabTask("kitti", 'kitti(task="closest_vehicle_distance")', tfds_name="kitti",
             config=None, versions=("3.1.0", "3.2.0", "3.3.0"), cut="official",
             num_classes=4, label_fn=kitti_closest_vehicle_distance, features=("objects",),
             class_names=("vehicle<=8m", "vehicle 8-20m", "vehicle>20m", "no vehicle"),
             group="structured",
             note="task_adaptation pins 3.1.0, which tfds no longer builds; 3.2.0 yields the "
                  "same data (task_adaptation issue #18), 3.3.0 only adds `occluded` labels"),
    VtabTask("smallnorb.azmth", 'smallnorb(predicted_attribute="label_azimuth")',
             tfds_name="smallnorb", config=None, versions=("2.*.*",), cut="test_half",
             num_classes=18, label_fn=smallnorb_azimuth, features=("label_azimuth",),
             flip=False, note="azimuth label: a mirror image turns the other way, no flips",
             **_STRUCTURED_SYNTH),
    VtabTask("smallnorb.elev", 'smallnorb(predicted_attribute="label_elevation")',
             tfds_name="smallnorb", config=None, versions=("2.*.*",), cut="test_half",
             num_classes=9, label_fn=smallnorb_elevation, features=("label_elevation",),
             note="a left/right flip keeps the camera elevation", **_STRUCTURED_SYNTH),
)
TASKS: dict[str, VtabTask] = {t.name: t for t in TASK_LIST}

# Other spellings people type: CLEVR spelt right, and task_adaptation's registry strings.
ALIASES = {"clevr.count": "clever.count", "clevr.closest": "clever.closest",
           **{t.key: t.name for t in TASK_LIST}}


# --------------------------------------------------------------------------- task names


#: A comma between task names: not one inside parentheses ('dsprites(a="x",num_classes=16)').
_COMMAS = re.compile(r",(?![^()]*\))")


def select_tasks(names=None) -> list[VtabTask]:
    """The tasks called `names` (short names, aliases or group names, in any case) in table
    order; all 19 when `names` is empty. Each item may be a comma list, with or without
    spaces ("dtd,svhn", "dtd, svhn"), as other commands take lists; a comma inside a
    task_adaptation registry string's parentheses is its own. Raises HubensembleError for an
    unknown name (listing the known ones) or for items that name no task at all (" , ")."""
    from hubensemble.errors import HubensembleError

    if not names:
        return list(TASKS.values())
    given = names
    names = [n.strip() for item in names for n in _COMMAS.split(item) if n.strip()]
    if not names:
        raise HubensembleError(f"--tasks names no task (got {', '.join(map(repr, given))}); "
                               "give task names (--list shows them) or leave --tasks out "
                               "for all 19")
    wanted, unknown = set(), []
    folded = {k.lower(): v for k, v in {**{t: t for t in TASKS}, **ALIASES}.items()}
    for name in names:
        key = folded.get(name.lower())  # in any case: the table prints "Natural", "DTD"
        if key in TASKS:
            wanted.add(key)
        elif GROUP_SPELLINGS.get(name.lower(), name.lower()) in GROUPS:
            group = GROUP_SPELLINGS.get(name.lower(), name.lower())
            wanted.update(t.name for t in TASKS.values() if t.group == group)
        else:
            unknown.append(name)
    if unknown:
        from hubensemble.text import closest_name

        # git's "did you mean", as hubensemble's commands say it (cifar -> cifar100).
        known = [*TASKS, *ALIASES, *GROUPS]
        said = [n + (f" (did you mean {closest_name(n, known)}?)" if closest_name(n, known)
                     else "") for n in unknown]
        raise HubensembleError(
            f"unknown VTAB {'task' if len(said) == 1 else 'tasks'}: {', '.join(said)}; choose from "
            f"{', '.join(TASKS)} (or a group: {', '.join(GROUPS)})")
    return [t for t in TASKS.values() if t.name in wanted]
