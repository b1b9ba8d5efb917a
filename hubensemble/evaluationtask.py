"""The task evaluate scores: the data spec it is given (a tfds split string, the label and
image features) or the data of the run the export sits in, kept to the scored split's pixels
(`load_evaluation_task`); `evaluate` re-exports it."""

from __future__ import annotations

import copy
import os
import shlex

import numpy as np

from hubensemble import options
from hubensemble.datachange import metadata_spec
from hubensemble.errors import DataError
from hubensemble.evaluatesplit import check_recorded_split, check_scored_split
from hubensemble.exportfolder import task_record
from hubensemble.formats import read_export_metadata
from hubensemble.heldout import named_run_data, parent_run
from hubensemble.lockwords import option_word
from hubensemble.terminal import shows_progress


@shows_progress
def load_evaluation_task(model_dir, data=None, *, data_dir=None, progress=True, split=None,
                         label_key=None, image_key=None):
    """The task to evaluate `model_dir` on: `data` (a spec read by `load_test_set`: a folder
    of class folders is one test set of all its images, unless it is the export's own data,
    split as fit split it) when given, else the task of the run the export sits in
    (RUN/run.json), loaded as the run loaded it (`data_dir` replaces the recorded folder).
    DataError when there is no `data` and the export's parent folder is not a run that
    records its data; RunError when the run's data changed since it was recorded;
    options.OptionError for a `data` or `data_dir` "" (no spec, no folder). `progress`: a
    folder load's bar on stderr, as `load_task`'s (`terminal.library_progress`).

    `split` (train, val or test; None: every split whole): the one split to be scored, whose
    pixels alone the task keeps once it is loaded and checked (`scored_only`): the run's
    train and val pixels, 1 GB at 4,000 / 1,000 images of 224 px, were held through the
    whole evaluation only for its check against the record. DataError for a split the data
    lacks, or a name that is none of them. A tfds: `data` reads `split` alone
    (`load_test_set`): its other splits are neither read nor counted in the result's
    "unscored".

    A tfds: `data` takes a tfds split string for `split` as NAME=TFDS_SPLIT
    (`parse_scored_split`: "test=test[:50%]", "val=validation"), and the label and image
    features as `label_key` and `image_key` (None: "label", "image"), as `load_task` takes
    them (evaluate's --split, --label-key, --image-key); options.OptionError for them without
    `data` (the run's own data is read as it recorded them), DataError for other data."""
    name, tfds_split = (None, None) if split is None else parse_scored_split(split)
    keys = {k: v for k, v in (("label_key", label_key), ("image_key", image_key))
            if v is not None}
    task = _evaluation_task(model_dir, data, data_dir, name, tfds_split, keys)
    return task if name is None else scored_only(task, name)


def parse_scored_split(split: str) -> tuple[str, str | None]:
    """evaluate's split: "test" (train, val, test or an alias) -> ("test", None); for tfds:
    data "NAME=TFDS_SPLIT" (fit's --split override, e.g. "test=test[:50%]") -> (NAME, the
    tfds split string, stripped), the split NAME read from it. No TensorFlow. DataError
    (`data.task.split_key`'s) for a NAME that is none of them; for a TFDS_SPLIT that is
    empty or "none", which would switch off the split scored; for a tfds split string given
    alone ("test[:50%]"), with the NAME=TFDS_SPLIT to write."""
    from hubensemble.data.task import _SPLIT_ALIASES, split_key

    name, sep, tfds_split = str(split).partition("=")
    if not sep and "[" in name:  # a tfds split string alone ("test[:50%]"): NAME= first
        prefix = name.split("[", 1)[0]
        key = _SPLIT_ALIASES.get(prefix.lower(), "test")
        raise DataError(f"{name!r} is a tfds split string; give it after the name of the "
                        f"split it is read as, NAME=TFDS_SPLIT: {key}={name}")
    split_key(name)
    tfds_split = tfds_split.strip()
    if sep and tfds_split.lower() in ("", "none"):
        raise DataError(f"{split!r} would leave the {name} split scored unread; write "
                        f"{name}=TFDS_SPLIT (a tfds split string, e.g. {name}="
                        f"{'test[:50%]' if name == 'test' else 'train[:10%]'}), or {name} "
                        "alone for VTAB-1k's")
    return name, (tfds_split if sep else None)


def scored_part(task, split: str):
    """`task.split(split)` (a Split), the split evaluate scores; its DataError for a split
    the task does not have ("task 'd' has no test split (…); splits present: train, val")
    names the flag that scores one it has, val before train ("; score one it has: --split
    val"): it stopped at the list (a new-user check: an npz without x_test). Its other
    refusals (one test set, one split read alone) say their way on already."""
    from hubensemble.data.task import split_key

    try:
        return task.split(split)
    except DataError as e:
        key = split_key(split)
        has = [s for s in ("val", "train", "test") if s != key and getattr(task, s, None)]
        if getattr(task, key, None) is not None or task.test_set_only or not has or (
                getattr(task, "one_split", None) not in (None, key)):
            raise
        raise DataError(f"{e}; score one it has: "
                        f"{option_word(f'--split {has[0]}', f'split={has[0]!r}')}") from None


def scored_only(task, split: str):
    """A shallow copy of `task` whose splits other than `split` (train, val or test; their
    aliases) hold no pixels: each image a read-only, zero-byte stand-in of its shape
    (np.broadcast_to of 0: the pixels read as 0), with the split's labels, paths and pixel
    keys (`Split.pixel_keys`, computed first from the true pixels, so duplicate and held-out
    counts stay right), the task's fingerprint and the split's (first). What `evaluate_model`
    reads of an unscored split is its length; the original `task` is not changed, its pixels
    freed when nothing else holds it: the scored split's are copied when they are a view of
    a larger array (`_own_pixels`: a folder's carved splits). DataError (`scored_part`) for a
    split `task` lacks."""
    from hubensemble.data.task import SPLIT_NAMES, split_key

    kept = scored_part(task, split)
    _ = task.fingerprint  # a cached property: computed on the true pixels, copied below
    task.split_fingerprints([split_key(split)])  # the scored split's, as `same_data` reads it
    light = copy.copy(task)  # keeps the cached fingerprint (and duplicates, when computed)
    light._split_digests = dict(task._split_digests)  # its own: the others' pixels go
    own = _own_pixels(kept)
    for name in SPLIT_NAMES:
        part = getattr(task, name)
        if part is kept:  # kept: a test set's train is its test split
            setattr(light, name, own)
        if part is None or part is kept:
            continue
        part.pixel_keys()
        bare = copy.copy(part)
        bare.images = (_stand_in(part.images) if isinstance(part.images, np.ndarray)
                       else [_stand_in(im) for im in part.images])
        setattr(light, name, bare)
    return light


def _own_pixels(part):
    """`part` (a Split), or a shallow copy holding a copy of its images when they are a view
    of a larger array: splits carved off a folder's train are views of its one array
    (`splits._partition_in_place`), which the scored split alone kept whole (evaluate
    --split val of a folder run held every split's pixels through the evaluation)."""
    images = part.images
    root = images
    while isinstance(root.base if isinstance(root, np.ndarray) else None, np.ndarray):
        root = root.base
    if not isinstance(images, np.ndarray) or root.nbytes <= images.nbytes:
        return part
    own = copy.copy(part)  # its labels, paths and pixel keys
    own.images = images.copy()
    return own


def _stand_in(images: np.ndarray) -> np.ndarray:
    """uint8 zeros of `images`' shape that hold no memory (a read-only broadcast of one 0)."""
    return np.broadcast_to(np.zeros((), np.uint8), images.shape)


def _evaluation_task(model_dir, data, data_dir, split=None, tfds_split=None, keys=None):
    """`load_evaluation_task`'s task, every split whole; of `data`, a tfds: spec reads only
    `split` when given (`load_test_set`'s), from `tfds_split` when given, with the features
    `keys` ({"label_key", "image_key"} when given)."""
    from hubensemble.data.specs import check_tfds_only, load_test_set, parse_spec
    from hubensemble.data.task import split_key
    from hubensemble.rundir import DataArgs

    options.check("data_dir", data_dir)  # "" is no folder: it read the run's own, without a word
    if data == "":  # no spec: it scored the run's own data, without a word
        raise options.OptionError(f"data {options.EMPTY_SPEC}, got ''; or None for the data "
                                  "of the run the export belongs to")
    if data:
        check_export_files(model_dir)  # (without data: check_evaluation_data's)
        meta = read_export_metadata(model_dir)
        made_on = task_record(meta)  # (edited into no object: none; evaluate_model says so)
        own = None if tfds_split or split is None else own_tfds_split(made_on, data, split)
        if own:  # the export's fit read this split so: read it so, and say it
            tfds_split = own
        check_scored_split(data, split)  # from the archive's listing, before its arrays
        check_flat_folder_split(made_on, data, split)  # before its images
        own_keys, keys_said = own_tfds_keys(made_on, data, keys)  # its features, as fit's
        keys = {**own_keys, **(keys or {})}
        task = load_test_set(data, data_dir=data_dir, trained_on=made_on.get("fingerprint"),
                             trained_split=made_on.get("split"), split=split,
                             splits={split_key(split): tfds_split} if tfds_split else None,
                             model_classes=meta.get("class_names") or None, **keys)
        task.source += keys_said
        if own:
            key = split_key(split)
            task.source += (f"; its {key} split read as {own!r}, as the export's fit read it "
                            f"(its metadata's task.split.tfds; "
                            f"{option_word(f'--split {key}=TFDS_SPLIT', 'split=…')} reads "
                            "another)")
        return task
    run, recorded = check_evaluation_data(model_dir, data, split=(
        None if split is None else f"{split}={tfds_split}" if tfds_split else split), keys=keys)
    if not data_dir:
        task = run.task()
    else:
        # --data-dir replaces a tfds run's folder; for other data it was dropped without a word.
        check_tfds_only(parse_spec((recorded.get("args") or {}).get("spec") or "")[0],
                        {"data_dir": data_dir})
        args = DataArgs.from_json({**recorded["args"], "data_dir": data_dir})
        task = run.task(args.load())
    if parent_run(model_dir) is None:  # outside its run: whose data it scores, said
        task.source += outside_run_words(run)
    return task


def outside_run_words(run) -> str:
    """What the source of the data of `run` (a Run) says when it is scored for an export
    outside it (`export --run R --out DIR`, `named_run_data`): "; the data of the run R,
    which the export's metadata names (the export is outside it)". evaluate said nothing
    of whose data it scored: its line named the spec alone, as if it were the export's
    own run's."""
    from hubensemble.text import absolute

    return (f"; the data of the run {absolute(os.fspath(run.path))}, which the "
            "export's metadata names (the export is outside it)")


def check_flat_folder_split(made_on, data, split) -> None:
    """DataError (`data.specs.check_one_test_set`'s words), before any image is read, when
    `data` is a folder of class folders without train/ val/ test/ (one test set) and `split`
    (a name or alias, NAME=… read as NAME; None: not checked) is train or val, unless the
    export whose metadata's "task" is `made_on` may have been fit on that folder
    (`heldout.may_be_fit_on`: the load then splits it as fit did, by its fingerprint).
    load_evaluation_task said it only after every image was read (the command line's check
    came first, preflight, 138add5d)."""
    from hubensemble.data.specs import check_one_test_set, parse_spec
    from hubensemble.data.task import split_key
    from hubensemble.heldout import may_be_fit_on

    try:
        scheme, rest = parse_spec(str(data))
        key = None if split is None else split_key(str(split).partition("=")[0])
    except DataError:
        return  # the load's own words
    if scheme == "folder" and key in ("train", "val"):  # (may_be_fit_on lists the folder)
        check_one_test_set(data, split, trained_here=may_be_fit_on(
            made_on, os.path.expanduser(rest)))


def own_tfds_keys(made_on: dict, data, keys: dict | None) -> tuple[dict, str]:
    """({label_key, image_key} to read, words for the task's source) for `data` when it is
    the tfds data set the export was made on (`made_on`: its metadata's "task"; `_own_tfds`):
    a feature fit read by another name than the default ("label_elevation", recorded in
    task.split.tfds_keys) is read so when `keys` (the ones given) names none for it, and
    said; a key given that differs from the one fit read is said too. ({}, "") otherwise,
    and for an export written before the record: read as before (the defaults)."""
    recorded = ((made_on.get("split") or {}).get("tfds_keys")
                if isinstance(made_on.get("split"), dict) else None)
    if not isinstance(recorded, dict) or not _own_tfds(made_on, data):
        return {}, ""
    use, said = {}, []
    for key in ("label_key", "image_key"):
        fit, given = recorded.get(key), (keys or {}).get(key)
        if not isinstance(fit, str):
            continue
        flag = option_word(f"--{key.replace('_', '-')}", key)
        feature = key.split("_")[0]
        if given is None and fit != options.default(key):
            use[key] = fit
            said.append(f"its {feature} feature read as {fit!r}, as the export's fit read it "
                        f"(its metadata's task.split.tfds_keys; {flag} reads another)")
        elif given is not None and given != fit:
            said.append(f"its {feature} feature read as {given!r} ({flag}), not {fit!r} as the "
                        "export's fit read it")
    return use, "".join(f"; {w}" for w in said)


def _own_tfds(made_on: dict, data) -> bool:
    """Whether `data` is a tfds: spec of the data set the export was made on (`made_on`: its
    metadata's "task"; same name and config, and version when both name one)."""
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.tfds import _parse_tfds_name

    spec = made_on.get("spec")
    if not isinstance(spec, str) or not isinstance(data, str):
        return False
    try:
        (scheme, rest), (made_scheme, made_rest) = parse_spec(data), parse_spec(spec)
        if scheme != "tfds" or made_scheme != "tfds":
            return False
        (name, config, version), (made, made_config, made_version) = (
            _parse_tfds_name(rest), _parse_tfds_name(made_rest))
    except DataError:
        return False
    return (name, config) == (made, made_config) and not (
        version and made_version and version != made_version)


def own_tfds_split(made_on: dict, data: str, split: str) -> str | None:
    """The tfds split string the export's fit read `split` (train, val, test or an alias)
    from, when `data` is a tfds: spec of the data set the export was made on (`made_on`: its
    metadata's "task"; same name and config, and version when both name one) and that string
    is not VTAB-1k's (an override: fit --split test=test[:2000]); else None, and the data is
    read as before. An export written before it recorded them (no task.split.tfds): None."""
    from hubensemble.data.task import split_key
    from hubensemble.data.tfds import VTAB_SPLITS

    recorded = (made_on.get("split") or {}) if isinstance(made_on.get("split"), dict) else {}
    strings = recorded.get("tfds")
    if not isinstance(strings, dict) or not _own_tfds(made_on, data):
        return None
    key = split_key(split)
    own = strings.get(key)
    return own if isinstance(own, str) and own != VTAB_SPLITS[key] else None


def check_export_files(model_dir) -> None:
    """RunError when the SavedModel at `model_dir` cannot load by its files
    (`formats.check_saved_model_files`: a saved_model.pb that does not parse, empty or cut
    short; a variables file gone or cut short; nothing of a folder without saved_model.pb,
    which `check_saved_model_folder` names where the model is loaded), in
    `formats.load_saved_model`'s words, which predict says: "MODEL could not be loaded as a
    SavedModel (…); export it again with `hubensemble export --run RUN --out MODEL`"
    (`model_way_on`); then `check_serving_signature`. Files only, and first of evaluate's
    checks of the export: "pass --data SPEC" came first, and only with --data was the broken
    export told, after TensorFlow (a new user's check); a damaged saved_model.pb was not
    told before TensorFlow at all."""
    from hubensemble.formats import check_saved_model_files

    check_saved_model_files(model_dir)
    check_serving_signature(model_dir)


def check_serving_signature(model_dir) -> None:
    """RunError when the saved_model.pb of `model_dir` (a folder `check_saved_model_folder`
    passed) declares no serving_default signature, in the words `evaluate_model` says once
    the model is loaded: "MODEL has no serving_default signature (it has none); MODEL is
    not an export of hubensemble (no assets/hubensemble.json): pass …". Files only
    (`savedmodel_calls.read_calls`, the one reader of saved_model.pb without TensorFlow):
    it was said after the task's line, the data and TensorFlow (10.8 s; a new user's
    check). Nothing when the file cannot be read so (`check_export_files` says a damaged
    one first)."""
    from hubensemble.errors import RunError
    from hubensemble.formats import SERVING_SIGNATURE
    from hubensemble.prediction import model_way_on
    from hubensemble.savedmodel_calls import read_calls
    from hubensemble.text import names_listed

    calls = read_calls(model_dir)
    names = None if calls is None else sorted(calls.signatures)
    if names is not None and SERVING_SIGNATURE not in names:
        way = f"; {model_way_on(model_dir, read_export_metadata(model_dir))}"
        raise RunError(f"{model_dir} has no {SERVING_SIGNATURE} signature (it has "
                       f"{names_listed(names) or 'none'}){way}")


def check_evaluation_data(model_dir, data=None, *, split=None, keys=None):
    """(run, its recorded data: run.json's "data") of the export at `model_dir` when `data`
    is None or "" (the run's own data is evaluated), else (None, None). Reads files only,
    so the command line refuses before TensorFlow loads (it took 8.5 s and 664 MB to say
    "pass --data SPEC"). `split` (evaluate's --split: NAME or NAME=TFDS_SPLIT, None: not
    checked) and `keys` ({"label_key", "image_key"} given; None: none): a tfds split string
    for `data` other than tfds: is a DataError (`data.specs.check_split_strings`, saying what
    the split looks like there), and either of them without `data` an OptionError (the
    run's data is read as it recorded them): both were refused only after TensorFlow's
    import (6 s). RunError first for an export whose files are broken
    (`check_export_files`: a variables file gone, no serving_default). An export outside its
    run takes the data of the run its metadata names when that run records the export's
    data fingerprint (`named_run_data`). DataError when the
    export's parent folder is not a run that records
    its data, naming the spec the export's metadata (assets/hubensemble.json, task.source)
    says it was made from, when it names one (`metadata_spec`); RunError for a damaged
    run.json. Of `data` given, an npz whose class_names hold one the export does not name
    (`classmatch.class_index`, in the words it says once the data is loaded: it took 10.6 s
    and 664 MB, TensorFlow's import and the archive's images, to say what its class_names
    member says; `dataargs.listed_class_names`), and so of sklearn:digits, and of an npz
    without class_names by its label indices (`dataargs.listed_index_names`). Of the run's own
    data other than tfds:, the DataError `Run.task` says when its files alone say it cannot
    be loaded (`recordeddata.check_recorded_data`: a folder or npz that moved, with the way
    on), data given in Python (RunError: no way to load it; `Run.task` said "run the stage
    from Python with task=…" after TensorFlow, to a command line too), and then a split it
    lacks by run.json's sizes (`evaluatesplit.check_recorded_split`).
    Of `data` given, an npz whose listing lacks the split scored
    (`evaluatesplit.check_scored_split`: x_test alone for --split train, no x_test for the
    test split)."""
    check_export_files(model_dir)  # a broken export first: the --data demand is no way on
    tfds_split = None if split is None else parse_scored_split(split)
    if data:
        if tfds_split and tfds_split[1]:
            from hubensemble.data.specs import check_split_strings
            from hubensemble.data.task import split_key

            check_split_strings(data, {split_key(tfds_split[0]): tfds_split[1]})
        check_listed_classes(model_dir, data)
        check_scored_split(data, split)  # an npz's listing: the split scored is in it
        return None, None
    given = ([option_word(f"--split {split}", f"split={split!r}")]
             if tfds_split and tfds_split[1] else []) + [
        option_word(f"--{k.replace('_', '-')}", k) for k in keys or {}]
    if given:  # the run's data is read as it recorded them: these were dropped without a word
        raise options.OptionError(
            f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
            f"{option_word('--data tfds:NAME', 'data')}; the "
            "data of the export's run is read with the split strings and features it "
            "recorded (run.json data.args): pass the data spec to read it otherwise")
    run = parent_run(model_dir)
    recorded = run.data_section("args", "task") if run else None  # (damaged: RunError)
    if not recorded:  # outside its run (`export --out DIR`): the run its metadata names
        run, recorded = named_run_data(model_dir)
    if not recorded:
        spec = metadata_spec(read_export_metadata(model_dir))
        made = (f": its metadata says it was made from {spec}, e.g. "
                f"{option_word(f'--data {shlex.quote(spec)}', f'data={spec!r}')}"
                if spec else " (the data the model was trained for)")
        raise DataError(f"{model_dir} is not inside a run directory that records its data; "
                        f"pass {option_word('--data SPEC', 'data=SPEC')}{made}")
    if (recorded.get("args") or {}).get("reloadable") is False:  # `Run.task`'s, after TF
        from hubensemble.errors import RunError
        from hubensemble.lockwords import run_words

        raise RunError(f"the data of the export's run {run.path} was given in Python (an "
                       "in-memory task or a label function that cannot be imported again), "
                       f"so evaluate cannot load it from its {run.meta_path.name}; "
                       + run_words("evaluate", model_dir, flags="--data SPEC",
                                   keywords="task=TASK")
                       + " with the data to score")
    spec = (recorded.get("args") or {}).get("spec")
    if isinstance(spec, str) and not spec.startswith("tfds:"):
        # Its files alone say it cannot be loaded (a folder or npz that moved): in the words
        # `Run.task` says once TensorFlow has loaded (22-27 s, 664 MB on a busy machine). A
        # tfds: folder is checked by its caller, --data-dir replacing the recorded one.
        from hubensemble.recordeddata import check_recorded_data

        check_recorded_data(run)
    check_recorded_split(run, recorded, split)  # run.json's sizes: the split scored is there
    return run, recorded


def check_listed_classes(model_dir, data: str) -> None:
    """`classmatch.class_index`'s DataError, before any image is read, when the data `data`
    (an npz storing class_names, sklearn:digits, a folder of class folders:
    `dataargs.listed_class_names`) has
    classes the export at `model_dir` (its metadata's class names) does not all know.
    Nothing when either has no names, or the metadata cannot be read (the stage says it)."""
    import os
    from types import SimpleNamespace

    from hubensemble.classmatch import class_index
    from hubensemble.data.specs import parse_spec
    from hubensemble.dataargs import listed_class_names, listed_index_names

    names, made = listed_class_names(data), False
    if not names:  # an npz without class_names: its label indices, as the load names them
        names = listed_index_names(data)
        made = bool(names)
    if not names:
        return
    model_names = read_export_metadata(model_dir, strict=False).get("class_names") or None
    if not model_names:
        return
    scheme, path = parse_spec(data)
    if scheme == "folder":  # named as its loader names it: its folder's label
        from hubensemble.data import folder
        from hubensemble.text import absolute

        name = folder.label(os.path.basename(os.path.normpath(absolute(
            folder.locate_folder(path)))))
    else:
        name = os.path.splitext(os.path.basename(path))[0]
    class_index(list(model_names), SimpleNamespace(
        name=name, source=data, class_names=names, num_classes=len(names), names_made=made))
