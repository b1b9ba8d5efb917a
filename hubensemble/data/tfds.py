"""The `tfds:NAME[:CONFIG]` loader: a prepared TensorFlow Datasets data set, VTAB-1k splits."""

from __future__ import annotations

import logging
import os
import re

import numpy as np

from hubensemble.data.decode import (Decoded, UnreadableImage, _short, check_16bit,
                                     check_16bit_splits, check_array_values, decode_bytes,
                                     to_rgb_uint8, zero_one)
from hubensemble.data.loading import _EXAMPLES, LoadOptions
from hubensemble.data.sniff import TFDS_DECODED_WORDS
from hubensemble.data.splits import _make_split
from hubensemble.data.task import _SPLIT_ALIASES, Task
from hubensemble.data.taskwords import said_unless_summarised
from hubensemble.data.validate import index_names, text_names
from hubensemble.errors import DataError
from hubensemble.lockwords import option_word
from hubensemble.text import closest_name, closest_names, shell

log = logging.getLogger(__name__)

# The VTAB-1k protocol (paper section 4): 800 train + 200 validation from the train split.
VTAB_SPLITS = {"train": "train[:800]", "val": "train[800:1000]", "test": "test"}

# tfds data sets that are rendered rather than photographed (paper A.3: no colour distortion;
# smallnorb is grey-scale studio shots of toys, where hue/saturation jitter only adds colour).
SYNTHETIC_TFDS = frozenset({"dsprites", "clevr", "dmlab", "smallnorb"})
# tfds data sets whose labels a left/right flip can change (digits, positions, azimuths).
NO_FLIP_TFDS = frozenset({"mnist", "emnist", "kmnist", "svhn_cropped", "dsprites", "smallnorb"})

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")

#: tfds' list of close configs of an unknown one (tensorflow_datasets.core.registered), when
#: it lists none: nothing follows its colon.
_EMPTY_CLOSE = re.compile(r"\s*Here are \d+ BuilderConfigs whose name closely match:\s*$")
#: tfds' head of a builder it could not make: its call's keywords, ours (the data dir and the
#: spec's config and version, said in the spec the message starts with).
_CONSTRUCT = re.compile(r'^Failed to construct dataset "[^"]*", builder_kwargs "\{[^}]*\}": ')


def _split_words(key: str, value: str) -> str:
    """A split override in the caller's words: "--split val=V" typed, "splits={'val': 'V'}"
    from Python (`lockwords.option_word`)."""
    return option_word(f"--split {key}={value}", f"splits={{'{key}': '{value}'}}")


def _key_word(option: str) -> str:
    """A feature option ("image_key", "label_key") in the caller's words ("--image-key")."""
    return option_word(f"--{option.replace('_', '-')}", option)


def _label_words() -> tuple[str, str]:
    """(the label feature's option, the label function) in the caller's words; label_fn is
    Python's only (a function), so the command line is told where it is."""
    return (_key_word("label_key"), option_word("load_task's label_fn (Python)", "label_fn"))


def _parse_tfds_name(rest: str) -> tuple[str, str | None, str | None]:
    """'NAME', 'NAME:CONFIG', 'NAME/CONFIG', 'NAME[/CONFIG]:1.2.3' → (name, config, version)."""
    parts = rest.split(":")
    name, config, version = parts[0], None, None
    if "/" in name:
        name, config = name.split("/", 1)
    for p in parts[1:]:
        if _VERSION.match(p) and version is None:
            version = p
        elif config is None and p:
            config = p
        else:
            raise DataError(f"tfds:{rest}: cannot parse; use tfds:NAME, tfds:NAME:CONFIG or "
                            f"tfds:NAME/CONFIG:VERSION")
    if not re.match(r"^[A-Za-z0-9_]+$", name or ""):
        raise DataError(f"tfds:{rest}: {name!r} is not a tfds data set name (letters, digits, "
                        f"underscores), e.g. {_EXAMPLES['tfds']}")
    return name, config, version


def _resolve_splits(overrides) -> dict[str, str | None]:
    """VTAB_SPLITS with `overrides` ({train|val|test: tfds split or None}) applied."""
    splits = dict(VTAB_SPLITS)
    for key, value in (overrides or {}).items():
        norm = _SPLIT_ALIASES.get(key)
        if norm is None:
            raise DataError(f"unknown split {key!r} in the split overrides; use train, val "
                            f"or test (e.g. val=validation[:200])")
        if value is not None and str(value).strip().lower() in ("", "none"):
            value = None
        splits[norm] = value
    if splits["train"] is None:
        key, given = next((k, v) for k, v in overrides.items() if _SPLIT_ALIASES[k] == "train")
        raise DataError(f"{_split_words(key, '' if given is None else given)} would switch "
                        "off the train split, which every stage trains or ranks on; give a "
                        f"tfds split string ({_split_words('train', 'train[:800]')}), or leave "
                        "it out for VTAB-1k's")
    return splits


def fixed_splits(rest: str) -> dict[str, str]:
    """{split: why}: a tfds: data set's val and test are tfds splits (VTAB_SPLITS or the split
    overrides; a dropped one stays dropped); no fraction sizes them."""
    return {split: f"tfds:{rest} takes {split} from its tfds splits; change it with a split "
                   f"override ({_split_words(split, example)})"
            for split, example in (("val", "train[800:1000]"), ("test", "test[:2000]"))}


def tfds_data_dir(data_dir=None) -> str:
    """The folder tfds reads prepared data sets from: `data_dir`, else $TFDS_DATA_DIR, else
    ~/tensorflow_datasets (tfds' own default), `~` expanded; messages name it."""
    from hubensemble.environment import path_from_environment

    return os.path.expanduser(data_dir or path_from_environment("TFDS_DATA_DIR")
                              or "~/tensorflow_datasets")


def _prepared(data_dir, name) -> list[str]:
    """"CONFIG/VERSION" (or "VERSION") of each prepared copy of tfds data set `name` in
    `data_dir` (default $TFDS_DATA_DIR, else ~/tensorflow_datasets), from its folders
    (`_version_folders`)."""
    return _version_folders(os.path.join(tfds_data_dir(data_dir), name))[0]


def _version_folders(root) -> tuple[list[str], bool]:
    """(sorted "VERSION" and "CONFIG/VERSION" folders under `root`, a data set's folder
    DATA_DIR/NAME, whether every folder there could be listed). tfds 4.9 reads a data set
    from DATA_DIR/NAME[/CONFIG]/VERSION/ (its dataset_info.json: `file_utils.
    get_dataset_dir`, `read_only_builder`), VERSION being MAJOR.MINOR.PATCH; a folder linked
    there counts as tfds follows it. `root` missing or no folder: ([], True)."""
    found, complete = [], True
    if not os.path.isdir(root):
        return found, complete
    try:
        entries = [e for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return found, False
    for entry in entries:
        if _VERSION.match(entry.name):
            found.append(entry.name)
            continue
        try:
            found += [f"{entry.name}/{e.name}" for e in os.scandir(entry.path)
                      if _VERSION.match(e.name) and e.is_dir()]
        except OSError:
            complete = False
    return sorted(found), complete


def _prepared_sets(data_dir) -> list[str]:
    """Names of the tfds data sets prepared in `data_dir` (as `_prepared`): the folders that
    hold a VERSION folder, directly or under a CONFIG folder."""
    root = tfds_data_dir(data_dir)
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError:
        return []
    return [n for n in names if _prepared(root, n)]


def _versions_there(root, name, version, where) -> str:
    """" (prepared in WHERE: CONFIG/VERSION, …)" when `version` was asked of data set `name`
    and copies of it are prepared in `root`: tfds' refusal of a version names the versions
    its builder knows, not those there to be read."""
    prepared = _prepared(root, name) if version else []
    return f" (prepared in {where}: {', '.join(prepared)})" if prepared else ""


def _unknown_name(name, data_dir, where) -> str:
    """The message for a tfds data set name that is neither registered nor prepared: what is
    prepared in the data dir, and the closest names (a typo: tfds:cifar1O)."""
    import tensorflow_datasets as tfds

    prepared = _prepared_sets(data_dir)
    try:
        known = set(tfds.list_builders(with_community_datasets=False))
    except Exception:  # noqa: BLE001 - only for the message
        known = set()
    close = closest_names(name, sorted(known | set(prepared)))  # git's rule, its ties
    return (f"tfds has no data set named {name!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + (f"; prepared in {where}: {', '.join(prepared)}" if prepared else
               f"; nothing is prepared in {where}")
            + "; the registered names are `tfds.list_builders()`, e.g. tfds:cifar10")


def _where_and_prepare(name, config, data_dir) -> tuple[str, str]:
    """(the data dir in words: `data_dir`, else $TFDS_DATA_DIR's or the default folder, with
    "(no such folder)" or "(a file, not a folder)" when it is not a folder; how to prepare
    data set `name` (`config`) there) for the refusals of a data set not prepared."""
    where = data_dir or (f"$TFDS_DATA_DIR's folder {tfds_data_dir()}"  # name it
                         if os.environ.get("TFDS_DATA_DIR") else
                         f"the default data dir {tfds_data_dir()}")
    root = tfds_data_dir(data_dir)
    if not os.path.isdir(root):  # a mistyped --data-dir: say so, not only "not prepared"
        where += " (a file, not a folder)" if os.path.exists(root) else " (no such folder)"
    prepare = (f"prepare it once on a machine with internet: `tfds build {name}"
               f"{' --config ' + config if config else ''}"
               f"{' --data_dir ' + shell(data_dir) if data_dir else ''}` (or copy a "
               f"prepared folder there), then pass {option_word('--data-dir', 'data_dir')} to "
               "where it lives")
    return where, prepare


def check_data_dir(rest: str, data_dir, splits=None) -> None:
    """Before TensorFlow (`specs.check_spec`, for every command that reads --data, and
    load_task / load_test_set; evaluate's data of an export's run, `commands`): DataError,
    in the words `_load_tfds` says after TensorFlow's import (7-11 s and ~700 MB), when the
    data folder alone says tfds:`rest` cannot be read there. The folder: `data_dir`
    (--data-dir), else $TFDS_DATA_DIR's, else ~/tensorflow_datasets (`tfds_data_dir`).

    Refused: a folder this process may not enter (its permissions); and nothing of data set
    NAME prepared there (`_version_folders`: no DATA_DIR/NAME[/CONFIG]/VERSION folder, where
    tfds 4.9.10's builder looks for its dataset_info.json, as the folder is missing, a file,
    empty or holds other data sets): a NAME tfds does not register is then `_unknown_name`'s
    refusal (its "did you mean"), a registered one "tfds:NAME is not prepared in DIR …" with
    how to prepare it. Left to tfds (its words): a remote folder (gs://…, which tfds reads
    and this process cannot list), a data set folder not every part of which can be listed,
    a CONFIG or VERSION its builder does not know (`tfds.builder_cls`, no TensorFlow), and
    any folder while tfds' reading is replaced (`_reads_files`: `tfds.testing.mock_data`).
    Before the folder, the split overrides `splits` ({train|val|test: tfds split or None},
    --split; `_resolve_splits`' refusals): a flag's error is the more useful first, as the
    folder may be right once it is fixed (`--split train=` was refused after the folder was
    prepared, and after TensorFlow)."""
    name, config, version = _parse_tfds_name(rest)
    _resolve_splits(splits)
    root = tfds_data_dir(data_dir)
    if "://" in root:  # gs://bucket/…: tfds reads it through its own file system
        return
    where, prepare = _where_and_prepare(name, config, data_dir)
    if os.path.isdir(root) and not os.access(root, os.X_OK):
        flag = option_word("--data-dir", "data_dir")
        raise DataError(f"tfds:{rest} cannot be read in {where}: the folder is not readable "
                        f"by you (its permissions); make it readable, or pass {flag} to a "
                        "readable copy of it")
    found, complete = _version_folders(os.path.join(root, name))
    if found or not complete:
        return
    import tensorflow_datasets as tfds  # its registry: no TensorFlow (0.5 s)

    if not _reads_files(tfds):
        return
    try:
        builder = tfds.builder_cls(name)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(_unknown_name(name, root, where)) from None
    except Exception:  # noqa: BLE001 - its builder's own words, after TensorFlow
        return
    if not _known_to_builder(builder, config, version):
        return
    raise DataError(f"tfds:{rest} is not prepared in {where}; hubensemble never "
                    f"downloads data: {prepare}")


def _tfds_words(e: BaseException) -> str:
    """tfds' refusal to make a builder, in one line of at most 200 characters (`_short`),
    without its head ("Failed to construct dataset …, builder_kwargs {…}: ", `_CONSTRUCT`),
    which took the 200 before its reason ("cannot be loaded at version" was cut there)."""
    lines = str(e).strip().splitlines()
    text = _CONSTRUCT.sub("", lines[-1]) if lines else ""
    return _short(RuntimeError(text)) if text else _short(e)


def _reads_files(tfds) -> bool:
    """Whether tfds reads a data set from its folder: False while its reading is replaced
    (`tfds.testing.mock_data`, tfds' way to test code that loads data sets without them,
    patches `DatasetBuilder.as_dataset` and ignores the data_dir given): any folder is read
    then, so none is refused for what it holds."""
    read = getattr(tfds.core.DatasetBuilder, "as_dataset", None)
    return getattr(read, "__module__", None) == "tensorflow_datasets.core.dataset_builder"


def _known_to_builder(builder, config, version) -> bool:
    """Whether the tfds builder class `builder` knows `config` (None: its default) and
    `version` (None: its default), as tfds.builder would make it: its BUILDER_CONFIGS'
    names; VERSION and SUPPORTED_VERSIONS, its own and its configs'."""
    configs = list(getattr(builder, "BUILDER_CONFIGS", None) or [])
    if config is not None and config not in [c.name for c in configs]:
        return False
    if version is None:
        return True
    known = [getattr(builder, "VERSION", None), *getattr(builder, "SUPPORTED_VERSIONS", [])]
    for c in configs:
        known += [getattr(c, "version", None), *(getattr(c, "supported_versions", None) or [])]
    return version in {str(v) for v in known if v is not None}


def _load_tfds(rest: str, options: LoadOptions, only: str | None = None,
               evaluated: bool = False, model_classes=None) -> Task:
    """tfds:NAME[:CONFIG] — a prepared TensorFlow Datasets data set; never downloads.

    `only` (train, val or test; `load_test_set`'s `split`, what evaluate scores): that split
    alone is read (its VTAB_SPLITS string, or its override), the others never: evaluate of
    the test split read train[:800] too, and a data set of fewer training examples was
    refused. The Task then holds that split alone (`_one_split_task`). `evaluated`: read for
    evaluate (`load_test_set`), whose refusals of a split say what evaluate takes
    (`_scored_words`), not a split override. `model_classes` (the export evaluate scores:
    its class names): ClassLabel names it does not name are refused from `builder.info`
    before any example is read (`classmatch.class_index`), not after the split."""
    name, config, version = _parse_tfds_name(rest)
    # tfds' own name of it (NAME/CONFIG:VERSION) for its calls; the words echo `rest`, as
    # typed (tfds:mnist:foo was said as tfds:mnist/foo).
    full = name + (f"/{config}" if config else "") + (f":{version}" if version else "")
    splits = _resolve_splits(options.splits)
    if only is not None:
        if splits[only] is None:
            raise DataError(f"tfds:{rest}: its {only} split is switched off; "
                            f"{_scored_words(only, only)}")
        # That split alone: a Task holds it alone (`_one_split_task`), as a test set.
        splits = {key: (value if key == only else None) for key, value in splits.items()}
    from hubensemble._tf import tensorflow as tf
    import tensorflow_datasets as tfds

    where, prepare = _where_and_prepare(name, config, options.data_dir)
    # tfds itself does not expand "~" (load_task(data_dir="~/tensorflow_datasets") found the
    # data set "not prepared" while naming its prepared copies): it gets the folder expanded,
    # $TFDS_DATA_DIR and the default included, as every message names it.
    root = tfds_data_dir(options.data_dir)
    try:
        builder = tfds.builder(full, data_dir=root)
        features = builder.info.features
    except tfds.core.registered.DatasetNotFoundError:
        prepared = _prepared(root, name)
        if prepared:  # the data set is there, its config or version is not (a new-user check)
            asked = " at ".join(filter(None, (config and f"config {config!r}",
                                              version and f"version {version}")))
            raise DataError(f"tfds:{rest}: {name} has no prepared "
                            f"{asked or 'copy tfds reads'} in {where}; prepared there: "
                            f"{', '.join(prepared)}") from None
        raise DataError(_unknown_name(name, root, where)) from None
    except ValueError as e:  # e.g. an unknown config of a registered data set
        # tfds' "Here are 10 BuilderConfigs whose name closely match:" lists none when none
        # is close (or the data set has none): the sentence goes, the configs are said below.
        said = _EMPTY_CLOSE.sub("", _CONSTRUCT.sub("", " ".join(str(e).split()))[:600]) + (
            _versions_there(root, name, version, where))
        if config:
            try:
                configs = [c.name for c in tfds.builder_cls(name).BUILDER_CONFIGS]
            except Exception:  # noqa: BLE001 - only for the message
                configs = None
            if configs is not None:
                said += (f" ({name}'s configs: {', '.join(configs)})" if configs else
                         f" ({name} has no configs: tfds:{name})")
        raise DataError(f"tfds:{rest}: {said}") from None
    except (AssertionError, OSError, tf.errors.OpError) as e:  # a version it has not
        raise DataError(f"tfds:{rest}: {_tfds_words(e)}"
                        + _versions_there(root, name, version, where)) from None
    keys = sorted(features.keys()) if hasattr(features, "keys") else []
    for what, key, fits, kind in _feature_kinds(options):
        if key not in keys:
            meant = closest_name(key, keys)  # fit's options' "did you mean" (Label, imgae)
            hint = f" (did you mean {meant!r}?)" if meant else ""
            other = [k for k in keys if fits(features[k])]
            raise DataError(f"tfds:{rest} has no feature {key!r}{hint} "
                            f"(pass {_key_word(what)}); its "
                            f"features are: {', '.join(keys)}; " + (
                                f"of them {kind}: {', '.join(other)}" if other else
                                f"none of them is {kind}, so it is not an image "
                                f"classification data set as stored"))
    _check_feature_kinds(rest, features, keys, options)
    label_feature = features[options.label_key]
    class_names = (text_names(label_feature.names, what=f"tfds:{rest} ClassLabel names")
                   if isinstance(label_feature, tfds.features.ClassLabel) else None)
    if model_classes and class_names is not None:  # the names are known: refuse unread
        from types import SimpleNamespace

        from hubensemble.classmatch import class_index

        class_index(list(model_classes), SimpleNamespace(
            name=name + (f"_{config}" if config else ""), source=f"tfds:{rest}",
            class_names=class_names, num_classes=len(class_names)))
    raw, noted = {}, decode_notes()
    encoded = stored_encoded(features[options.image_key])
    for key, split in splits.items():  # an empty one said before any example is read
        if split is not None and _counted(builder, split) == 0:
            raise DataError(f"tfds:{rest}: split {split!r} ({key}) is empty; " + (
                _scored_words(key, only, split, builder) if evaluated else
                f"override it, e.g. {_split_words(key, 'train[:80%]')}"))
    for key, split in splits.items():
        if split is None:
            continue
        try:
            ds = builder.as_dataset(split=split, shuffle_files=False, decoders={
                options.image_key: tfds.decode.SkipDecoding()} if encoded else None)
            ds = ds.map(lambda ex: (ex[options.image_key], ex[options.label_key]))
            images, labels = [], []
            for im, lab in ds.as_numpy_iterator():
                if encoded:
                    im, got = decode_stored(im, rest, split, len(images))
                    # named as Task.example_name names it
                    note_decoded(noted, f"{key}[{len(images)}]", got)
                else:
                    im = np.asarray(im)
                images.append(im[..., None] if im.ndim == 2 else im)
                labels.append(lab)
        except AssertionError:
            raise DataError(f"tfds:{rest} is not prepared in {where}; hubensemble never "
                            f"downloads data: {prepare}") from None
        except (ValueError, KeyError, TypeError, tf.errors.OpError) as e:
            known = ", ".join(sorted(builder.info.splits.keys())) or "unknown"
            raise DataError(f"tfds:{rest}: cannot read split {split!r} for {key} "
                            f"({_short(e)}); the data set's splits are: {known}; " + (
                                _scored_words(key, only, split, builder) if evaluated else
                                f"override with {_split_words(key, '...')}")) from None
        if not labels:
            raise DataError(f"tfds:{rest}: split {split!r} ({key}) is empty; " + (
                _scored_words(key, only, split, builder) if evaluated else
                f"override it, e.g. {_split_words(key, 'train[:80%]')}"))
        try:
            lab = np.asarray(labels)
            if lab.ndim != 1 or lab.dtype.kind not in "iu":  # not timedelta64
                raise ValueError(lab.dtype)
        except ValueError:
            raise DataError(f"tfds:{rest}: feature {options.label_key!r} is not one integer "
                            "per example; pick a class-label feature with {}, or map it with "
                            "{}".format(*_label_words())) from None
        raw[key] = (images, lab)
    what = f"tfds:{rest} {options.image_key!r}"
    # 16-bit or 8-bit is decided for the data set as a whole: one dark 16-bit image is not
    # 8-bit data, a data set of uint16 values that all lie in 0..255 is.
    check_16bit_splits({f"the {key} split ({splits[key]})": images
                        for key, (images, _) in raw.items()}, what=what,
                       fix=f"build every split with the same bit depth (a uint8 "
                           f"{options.image_key!r} feature for 8-bit data)")
    check_16bit([im for images, _ in raw.values() for im in images], what=what,
                fix=f"build the data set with a uint8 {options.image_key!r} feature")
    # Binary images (dsprites: 0 / 1) read near black as 0..255 pixels, without a word; the
    # feature cannot be stored otherwise, so they are read as 0 / 255 (task_adaptation's
    # `* 255`) and the source says so (an npz or a Split of them is refused with the fix).
    binary = zero_one([im for images, _ in raw.values() for im in images])
    if binary:
        raw = {key: ([_scaled(im) for im in images], lab) for key, (images, lab) in raw.items()}
    check_array_values([im for images, _ in raw.values() for im in images], what=what,
                       then="; a tfds feature is read as stored: write its images so to an "
                            "npz (numpy.savez(PATH, x_train=..., y_train=...)) and load "
                            "npz:PATH")
    loaded = {key: _make_split([to_rgb_uint8(im, what=what, known_16bit=True) for im in images],
                               lab) for key, (images, lab) in raw.items()}
    made = class_names is None  # no ClassLabel: named by label index (`Task.names_made`)
    if made:  # indices 0..max, all used (`index_names`)
        class_names, _ = index_names(
            {key: s.labels for key, s in loaded.items()}, what=f"tfds:{rest}",
            gaps=options.relabelled,
            fix="pick a ClassLabel feature with {}, or map the labels with {} returning "
                "(labels, class_names) ".format(*_label_words())
                + f"(feature {options.label_key!r} is not a ClassLabel)")
    shown = " / ".join(f"{k} {v}" for k, v in splits.items() if v is not None)
    if encoded:
        shown += f"; its {options.image_key!r} {TFDS_DECODED_WORDS}"
    if binary:
        shown += (f"; its {options.image_key!r} pixels are all 0 or 1 (binary images), read "
                  f"as 0 / 255")
    parts = (_one_split_task(only, loaded) if only is not None else
             dict(train=loaded["train"], val=loaded.get("val"), test=loaded.get("test")))
    task = Task(name=name + (f"_{config}" if config else ""),
                source=f"tfds:{rest} ({shown})", class_names=class_names, **parts,
                synthetic=name in SYNTHETIC_TFDS, flip=name not in NO_FLIP_TFDS,
                names_made=made, **noted)
    said_unless_summarised(task, log)  # refused by serve_bytes; read dark: as a folder's
    return task


def _counted(builder, split: str) -> int | None:
    """How many examples the tfds split string `split` (a slice too: "test[:0]") holds by
    the builder's record (`builder.info.splits[split].num_examples`), None when it cannot
    say (an unknown split: reading it says why). An empty slice was refused as "cannot read
    split 'test[:0]' (Instruction [] corresponds to no data!)"."""
    try:
        return int(builder.info.splits[split].num_examples)
    except Exception:  # noqa: BLE001 - reading the split says what is wrong
        return None


def _one_split_task(key: str, loaded: dict) -> dict:
    """The Task's splits when the split `key` (train, val, test) alone was read (`loaded`:
    {key: Split}): a test or val split stands in as train, the same Split
    (`Task.one_split`: `Task.split` refuses the other names), so no other split is read
    (evaluate --split val read train[:800] beside VTAB's val, refused where it was short);
    train is itself."""
    if key == "train":
        return {"train": loaded["train"], "val": None, "test": None}
    return {"train": loaded[key], "val": None, "test": None, key: loaded[key]}


#: An example tfds split string per split, for evaluate's way on (--split NAME=TFDS_SPLIT).
_EXAMPLE_SPLITS = {"train": "train[:80%]", "val": "validation", "test": "test[:50%]"}


def _scored_words(key: str, only: str | None, read: str | None = None, builder=None) -> str:
    """The way on when split `key` of a data set read for evaluate (`load_test_set`) cannot
    be read from the tfds split string `read` (None: VTAB_SPLITS'): give evaluate another
    tfds split string for it (--split KEY=TFDS_SPLIT, `evaluate.parse_scored_split`), or
    score another split, named with a split string `builder` (the data set's
    `tfds.core.DatasetBuilder`; None: not known) can read (`_other_split_word`); with every
    split read (`only` None: `load_evaluation_task` without `split`, Python's only), the one
    scored is read alone."""
    other = "test" if key != "test" else "train"
    if only is None:
        return (f"evaluate scores one split: read it alone, e.g. load_evaluation_task(MODEL, "
                f"SPEC, split={other!r}) (or load_test_set(SPEC, split={other!r})), as the "
                "evaluate command does")
    read = read or VTAB_SPLITS[key]
    given = f"{key}=TFDS_SPLIT"
    named = option_word(f"--split {given}", f"split={given!r}")
    return (f"evaluate read its {key} split as {read!r}"
            + (" (VTAB-1k's)" if read == VTAB_SPLITS[key] else "")
            + f"; name the tfds split to read ({named}, e.g. {key}={_EXAMPLE_SPLITS[key]}) or "
            f"score another split ({_other_split_word(other, builder)})")


def _other_split_word(other: str, builder=None) -> str:
    """How evaluate is told to score split `other` (train or test) of the data set of
    `builder` instead: --split OTHER, which reads VTAB-1k's string (VTAB_SPLITS), when the
    builder's counts hold it (or `builder` is None: not known); else the whole tfds split
    that string slices (--split train=train), as "train[:800]" of a data set of 60 training
    examples is refused by tfds ("Requested slice [:800] incompatible with 60 examples"):
    the advice "--split train" failed so."""
    vtab = VTAB_SPLITS[other]
    if builder is None or (_counted(builder, vtab) or 0) > 0:
        return option_word(f"--split {other}", f"split={other!r}")
    whole = vtab.split("[", 1)[0]
    count = _counted(builder, whole)
    if not count:  # not there either: the refusal names the data set's splits
        return option_word(f"--split {other}=TFDS_SPLIT", f"split='{other}=TFDS_SPLIT'")
    given = f"{other}={whole}"
    return (option_word(f"--split {given}", f"split={given!r}")
            + f": its {count} examples, as VTAB-1k's {vtab!r} is more than it holds")


def stored_encoded(feature) -> bool:
    """Whether a tfds feature (a `tfds.features.FeatureConnector`) is an Image of uint8
    pixels, which tfds stores encoded (PNG or JPEG bytes): read its examples undecoded
    (`tfds.decode.SkipDecoding()`) and turn each one's bytes into pixels with
    `decode_stored`. Never raises; False for any other feature (a dict of features too).

    The rule: those bytes are read by the decode policy, the function serve_bytes runs on a
    file, not by tfds' own `tf.image.decode_image`, which decodes JPEG with TensorFlow's fast
    IDCT (up to 3 levels off serve_bytes' pixels on most pixels of smooth test images, ~12 on
    photos) and drops a PNG's alpha or a GIF's transparent colour where serving puts them
    onto white: a model trained on a tfds data set of JPEGs was served the same files as
    other pixels. Float and 16-bit Image features, and Tensor features of pixels, are read as
    tfds decodes them (`to_rgb_uint8`'s rules); so is an Image declared with alpha (2 or 4
    channels): tfds writes it as a PNG, whose decode is lossless and keeps the alpha that
    `to_rgb_uint8` puts onto white as the policy does, and an alpha of at most 1 everywhere
    stays refused (`check_array_values`), where the policy would read every image white
    without a word. The `tfds:` loader and tools/vtab.py both follow it."""
    import tensorflow_datasets as tfds

    shape, dtype = _feature_shape_dtype(feature)
    return (isinstance(feature, tfds.features.Image) and dtype == np.uint8
            and shape is not None and shape[-1] not in (2, 4))


def decode_stored(data, source: str, split: str,
                  index: int) -> tuple[np.ndarray, Decoded | None]:
    """(pixels, decoded) of one example's image as tfds stores it when `stored_encoded`
    (read with SkipDecoding): `data` is its encoded bytes (PNG, JPEG, GIF, … as the builder
    stored them), decoded by the decode policy (`decode.decode_bytes`, no orientation tag
    applied: the folder loader's and serve_bytes' pixels). `pixels` is uint8 RGB [H, W, 3];
    `decoded` the policy's `Decoded` of it: what the folder loader counts of a file (its
    orientation tag, used as stored; a TIFF turned; a format serve_bytes refuses; 16-bit
    values that decode dark; `shrunk_from`, the (height, width) as decoded when its shorter
    side was above `sniff.MAX_SHORT_SIDE`, 1024, and `pixels` are the image shrunk to it),
    for `note_decoded`. `data` that is already an array (an as_dataset that decoded it) is
    returned as it is, with None.
    `source` ("tfds:NAME" or a task's name), `split` (the tfds split string) and `index` (the
    example's position in that split) only name the example in the error.

    Raises DataError naming the data set, the split and the example's index, with the
    reason, for bytes the policy refuses (a truncated or unknown file)."""
    if not isinstance(data, bytes):  # pixels already (an as_dataset that decodes itself)
        return np.asarray(data), None
    try:
        got = decode_bytes(data)
    except UnreadableImage as e:
        raise DataError(f"{source}: example {index} of split {split!r} cannot be decoded "
                        f"({e}); rebuild the data set, or leave the split out") from None
    return got.pixels, got


def decode_notes() -> dict[str, list]:
    """The empty lists `note_decoded` fills, by the `Task` field each one is: "oriented",
    "turned", "unservable", "dark", "shrunk" (`Task(**notes)`)."""
    return {"oriented": [], "turned": [], "unservable": [], "dark": [], "shrunk": []}


def note_decoded(notes: dict[str, list], name: str, got: Decoded | None) -> None:
    """Adds what decoding did to the example `name` ("train[3]", as `Task.example_name`
    names an example without a file) to `notes` (`decode_notes`), as the folder loader counts
    a file's: its orientation tag used as stored, a TIFF turned by its tag, a format
    serve_bytes refuses (the kept decoder's), 16-bit values that decode dark, a shrunk size.
    A tfds data set of the same JPEGs as a folder counted no orientation tag (its decode
    looked for none) and said nothing of them. `got` None (pixels, not a file): nothing."""
    if got is None:
        return
    for key, value in (("oriented", got.orientation), ("turned", got.turned),
                       ("unservable", None if got.in_graph else got.format),
                       ("dark", got.dark), ("shrunk", got.shrunk_from)):
        if value is not None:
            notes[key].append((name, value))


def _feature_shape_dtype(feature):
    """(shape, numpy dtype) of a tfds feature, or (None, None) for a nested one (a dict)."""
    shape = getattr(feature, "shape", None)
    dtype = getattr(feature, "np_dtype", None)
    if not isinstance(shape, tuple):
        return None, None
    try:
        return shape, np.dtype(dtype)
    except TypeError:
        return shape, None


def _image_like(feature) -> bool:
    """Whether a tfds feature holds one image per example: [H, W] or [H, W, C] with C of 1..4
    (or unknown), of numbers (an Image, a Tensor of pixels)."""
    shape, dtype = _feature_shape_dtype(feature)
    return (shape is not None and dtype is not None and dtype.kind in "uifb"
            and (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (None, 1, 2, 3, 4))))


def _label_like(feature) -> bool:
    """Whether a tfds feature holds one integer per example (a ClassLabel, an int feature)."""
    shape, dtype = _feature_shape_dtype(feature)
    return shape == () and dtype is not None and dtype.kind in "iu"


def _described(feature) -> str:
    shape, dtype = _feature_shape_dtype(feature)
    kind = type(feature).__name__
    kind = ("an " if kind[:1] in "AEIOU" else "a ") + kind
    if shape is None:
        return f"{kind} (nested features)"
    return (f"{kind} of shape {list(shape)}"
            + (f", {dtype.name if dtype.kind != 'O' else 'text'}" if dtype is not None else ""))


def _feature_kinds(options):
    """(option, key, test, words) for the image and the label feature: what each must be."""
    return (("image_key", options.image_key, _image_like,
             "an image per example ([H, W] or [H, W, C] of numbers, an Image feature)"),
            ("label_key", options.label_key, _label_like,
             "one integer class per example (a ClassLabel or an integer feature)"))


def _check_feature_kinds(rest, features, keys, options) -> None:
    """DataError, before any example is read, when the image_key feature holds no image per
    example or the label_key feature no integer per example, naming both, what they are and
    the data set's features that would do: image_key='count' (an int) was read to the end
    and refused as "expected a trailing channel axis of 1, 2, 3 or 4, got shape []", a Text
    label as "not one integer per example"."""
    for what, key, fits, kind in _feature_kinds(options):
        feature = features[key]
        if fits(feature):
            continue
        other = [k for k in keys if fits(features[k])]
        way = (f"pass {_key_word(what)} one of: {', '.join(other)}" if other
               else f"tfds:{rest} has none: it is not an image classification data set as "
                    f"stored" + (f"; map an integer feature to classes with {_label_words()[1]}"
                                 if what == "label_key" else ""))
        raise DataError(f"tfds:{rest}: feature {key!r} ({what}) is {_described(feature)}, "
                        f"not {kind}; {way}")


def _scaled(image: np.ndarray) -> np.ndarray:
    """A binary image's (`decode.zero_one`) colour channels 0 / 1 as uint8 0 / 255 (its alpha,
    the last of 2 or 4, kept)."""
    if image.size and image.max() > 255:  # an alpha to_rgb_uint8 refuses, in its words
        return image
    out = image.astype(np.uint8)
    colour = out[..., :-1] if out.shape[-1] in (2, 4) else out
    colour *= 255
    return out
