"""How a run's task is loaded (`DataArgs`: data.load_task's arguments as run.json records
them), so any stage, on any machine, loads the very same data from the run directory alone.

Apart from rundir.py (which re-exports DataArgs): what a run folder is, and how its data is
named and read again, are two concerns.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os

from hubensemble import options
from hubensemble.errors import DataError, checks_keywords
from hubensemble.text import absolute

log = logging.getLogger(__name__)


@checks_keywords  # public (hubensemble.DataArgs): DataArgs(flp=…) names flip
@dataclasses.dataclass(frozen=True)
class DataArgs:
    """How a run's task is loaded (hubensemble.data.load_task arguments), so any stage,
    on any machine, can load the very same data from the run directory alone.

    Defaults and allowed values are the data options of hubensemble.options (`seed` is the
    option `data_seed`, `--data-seed`); a value outside them raises options.OptionError.
    """

    spec: str
    data_dir: str | None = options.default("data_dir")
    seed: int = options.default("data_seed")
    splits: dict | None = options.default("splits")
    label_key: str = options.default("label_key")
    image_key: str = options.default("image_key")
    label_fn: str | None = None  # "module:qualname" of an importable function
    # False when the task came from Python (an in-memory Task, or labels mapped by a lambda):
    # later stages then need the task passed in-process; the CLI cannot load it again.
    reloadable: bool = True
    synthetic: bool | None = options.default("synthetic")
    flip: bool | None = options.default("flip")
    val_fraction: float = options.default("val_fraction")
    test_fraction: float = options.default("test_fraction")
    min_per_class: int = options.default("min_per_class")
    dedupe: bool = options.default("dedupe")

    def __post_init__(self):
        options.check_record("data", self)
        # Paths made absolute where they are given: later stages may run from another folder
        # (a new-user check: `distill` from inside runs/ read npz:d120.npz from there).
        from hubensemble.data.specs import absolute_spec

        object.__setattr__(self, "spec", absolute_spec(self.spec))
        if isinstance(self.data_dir, str) and self.data_dir:
            object.__setattr__(self, "data_dir", absolute(
                os.path.expanduser(self.data_dir)))

    def load(self, *, summary_follows: bool = False):
        """The task (data.load_task with these arguments): a validated hubensemble.data.Task;
        DataError when the data cannot be read or used. Each skipped file is logged (INFO),
        unless `summary_follows`: the caller then says the task's summary, which names the
        first ones, and logs the others after it (`log_skips`)."""
        from hubensemble.data.specs import load_task, skips_said

        fn = _import(self.label_fn) if self.label_fn else None
        with skips_said():  # the command's or fit's data summary says them, once
            task = load_task(self.spec, data_dir=self.data_dir, seed=self.seed, splits=self.splits,
                             label_key=self.label_key, image_key=self.image_key,
                             label_fn=fn, synthetic=self.synthetic, flip=self.flip,
                             val_fraction=self.val_fraction,
                             test_fraction=self.test_fraction,
                             min_per_class=self.min_per_class, dedupe=self.dedupe)
        if not summary_follows:
            log_skips(task)
        return task

    @classmethod
    def of_task(cls, task) -> "DataArgs":
        """The record of a Task given in Python (`fit(data=task)`, `run_rank(task=…)` without
        data_args). A Task `load_task` returned (its `Task.spec` and `Task.load_args`) is
        recorded as loaded, reloadable: later stages, the command line's too, load it again
        (and compare its fingerprint); `run_rank(task=load_task('sklearn:digits'))` then
        `hubensemble tune` was refused as "data given in Python". Any other Task (made in
        Python, or relabelled by a label_fn) is not reloadable (later stages need it passed
        in again), recorded with its spec when it has one, else its `source` text. The spec
        was its source with "(how)" ("sklearn:digits (scikit-learn's …, seed 3)")."""
        if task.spec and task.load_args is not None:  # load_task's: it loads again
            return cls(spec=task.spec, **task.load_args)
        return cls(spec=task.spec or task.source, reloadable=False)

    def to_json(self):
        """The fields as a JSON-ready dict (run.json "data" -> "args")."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d):
        """DataArgs from `to_json` output; keys it does not know (newer versions) are ignored.
        A fraction recorded before they were refused where the data does not use them reads as
        its default (`data.specs.recorded_fractions`: the same data), so that the run loads;
        so does a tfds-only option (`data.specs.TFDS_ONLY`) recorded for other data, and a
        data_dir "" (refused since: tfds read its default folder for it)."""
        from hubensemble.data.specs import TFDS_ONLY, parse_spec, recorded_fractions

        fields = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in fields}
        if d.get("data_dir") == "":  # recorded before "" was refused: the default folder then
            d["data_dir"] = None
        try:
            ignored = parse_spec(d.get("spec"))[0] != "tfds"
        except DataError:
            ignored = False  # `load` names the spec's fault
        args = cls(**{k: v for k, v in d.items() if not (ignored and k in TFDS_ONLY)})
        try:
            fractions = recorded_fractions(args.spec, args.val_fraction, args.test_fraction)
        except (DataError, OSError):  # the data is not here or unreadable: `load` says so
            return args
        return dataclasses.replace(args, **dict(zip(("val_fraction", "test_fraction"),
                                                    fractions)))


def log_skips(task, *, after_summary: bool = False, skipped_in: str | None = None) -> None:
    """Logs (INFO) the files of `task` that were skipped, a line per reason
    (`sniff.skip_lines`: "skipped PATH: reason", "skipped 40 files (A, B, …): reason"), so
    that a run's log (RUN/log.txt, when one is attached) names them; `skipped_in`: where the
    whole list is kept (`formats.skipped_list`, run.json's data.task.skipped), and a line of
    a shared reason names SKIPS_NAMED of its files, else every one. `after_summary`: the
    task's summary was just said, which names the first `Task.SKIPS_NAMED` of them: only the
    others. Each was named twice in the log (its line, then the summary's three), and 40
    files unreadable for one reason were 40 lines alike."""
    from hubensemble.data.sniff import skip_lines
    from hubensemble.data.task import SKIPS_NAMED

    for line in skip_lines(task.skipped[SKIPS_NAMED if after_summary else 0:], skipped_in,
                           SKIPS_NAMED):
        log.info("%s", line)


def function_name(fn):
    """'module:qualname' for an importable function, else None (lambdas, closures)."""
    if fn is None:
        return None
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qual:
        return None
    return f"{module}:{qual}"


def _import(name):
    module, _, qual = name.partition(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def listed_total(spec: str) -> int | None:
    """The training examples of the data `spec` at most, read as `listed_counts` reads them,
    for the memory rule's batch bound (`preflight`): sklearn:digits' is every seed's split's
    size (`data.digits.TRAIN_SIZE`), known without scikit-learn's import (1-3 s, ~90 MB,
    which every later refusal paid: a new-user check); None where `listed_counts` is."""
    from hubensemble.data.specs import parse_spec

    try:
        scheme, rest = parse_spec(spec)
    except DataError:
        return None
    if scheme == "sklearn" and rest == "digits":
        from hubensemble.data.digits import TRAIN_SIZE

        return TRAIN_SIZE
    listed = listed_counts(spec)
    return sum(listed[0].values()) if listed else None


def listed_counts(spec: str, seed: int = 0) -> tuple[dict[str, int], str] | None:
    """({class name: training examples at most}, what was counted) of the data `spec`, read
    without TensorFlow and without decoding an image: an npz's y_train labels (numpy reads
    that member alone; classes named by its class_names, else by index), a folder's files
    in its training class folders (as `data.folder.check_class_files` counts them),
    sklearn:digits' training split drawn with the data seed `seed` (`data.digits.
    train_labels`: its labels alone, the loader's split). Each count is at least the loaded
    task's (a val split carved off, duplicates and unreadable files dropped), so a refusal on
    it is one the loaded task would meet: the command line says it before TensorFlow's
    seconds (`commands.check_counts`). None for tfds: (its counts are the builder's, read
    with TensorFlow) and for data the loader will refuse for another reason (it says why).
    """
    from hubensemble.data import folder, npz
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.validate import text_names

    try:
        scheme, rest = parse_spec(spec)
        if scheme == "sklearn":
            from hubensemble.data.digits import train_labels

            import numpy as np

            values, counts = np.unique(train_labels(rest, seed), return_counts=True)
            return ({str(v): c for v, c in zip(values.tolist(), counts.tolist())},
                    f"the training split of {spec}, data seed {seed}")
        if scheme == "folder":
            path = folder.locate_folder(rest)
            root = folder.split_layout(path).get("train", path)
            listing = folder._Listing()
            return ({folder.label(c): len(folder._list_class_folder(os.path.join(root, c),
                                                                    listing))
                     for c in folder._class_folders(root, listing)},
                    f"files in {root}'s class folders, before decoding")
        if scheme == "npz":
            path = npz.locate_npz(rest)
            with npz._Archive(path) as archive:
                arrays, stored, _ = npz._members(archive.headers, path)
                if "y_train" not in stored:
                    return None
                labels = npz._npz_labels(archive.read(stored["y_train"]), stored["y_train"],
                                         path)
                names = (text_names(archive.read(stored["class_names"]).tolist())
                         if "class_names" in stored else [])
            import numpy as np

            values, counts = np.unique(labels, return_counts=True)
            if len(values) and (values[0] < 0 or (names and values[-1] >= len(names))):
                return None  # labels out of range: the loader refuses them in its words
            named = [names[v] if 0 <= v < len(names) else str(v) for v in values.tolist()]
            return (dict(zip(named, counts.tolist())),
                    f"labels in npz:{path}'s {stored['y_train']}" + (
                        "" if "x_val" in stored else ", before a val split is carved off"))
    except (DataError, OSError, ValueError, TypeError, IndexError):
        return None  # the loader says what is wrong
    return None


def listed_class_names(spec: str) -> list[str] | None:
    """The class names an npz: archive `spec` stores (its class_names member alone, read as
    the loader reads it: `validate.text_names`), sklearn:digits' ("0" … "9", its classes'
    digits, as its loader names them), or a folder of class folders' (its class folders'
    names, as the loader lists them, `folder._class_folders`; with train/ val/ test/,
    train/'s, the task's classes, then those of val/ and test/ that train/ lacks),
    without TensorFlow and without reading an image:
    what evaluate matches with an export's class names before its load
    (`evaluationtask.check_evaluation_data`: `evaluate --data sklearn:digits` of an export of
    other classes was refused after TensorFlow's import, 6 s; a folder's after every image
    was read too; one with train/ val/ test/ after TensorFlow and every image). None for
    other data, an archive without
    class_names (its classes are label indices, named by the labels it
    holds) and one the loader will refuse (it says why)."""
    from hubensemble.data import npz
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.validate import text_names

    try:
        scheme, rest = parse_spec(spec)
        if scheme == "sklearn":
            from hubensemble.data.digits import CLASS_COUNTS, check_sklearn_name

            check_sklearn_name(rest)
            return [str(i) for i in range(len(CLASS_COUNTS))]
        if scheme == "folder":
            from hubensemble.data import folder

            path = folder.locate_folder(rest)
            layout = folder.split_layout(path)
            listing = folder._Listing()
            names = [folder.label(c) for c in folder._class_folders(
                layout.get("train", path), listing)]
            others = [folder.label(c) for key in ("val", "test") if key in layout
                      for c in folder._class_folders(layout[key], listing)]
            # The task's classes are train/'s, then a val/ or test/ class folder without
            # one there: evaluate's refusal of a class the export does not know comes
            # before the loader's "every class needs training images (add train/c/ …)",
            # which an evaluation cannot act on (new user, stop 66). One the export knows
            # is still the loader's refusal, in its words.
            return names + [c for c in dict.fromkeys(others) if c not in names]
        if scheme != "npz":
            return None
        path = npz.locate_npz(rest)
        with npz._Archive(path) as archive:
            _, stored, _ = npz._members(archive.headers, path)
            if "class_names" not in stored:
                return None
            names = text_names(archive.read(stored["class_names"]).tolist())
    except (DataError, OSError, ValueError, TypeError, IndexError):
        return None  # the loader says what is wrong
    return names if len(set(names)) == len(names) else None  # duplicates: the loader's


def listed_index_names(spec: str) -> list[str] | None:
    """The class names evaluate's load gives an npz: archive `spec` without class_names (its
    classes named by label index: `validate.index_names` over every stored y_ member, the
    used values of a test set's labels, `load_test_set`'s), from its label members alone
    (no image array, no TensorFlow): `evaluate --data npz:T` of such an archive for an
    export of named classes was refused ("Its classes are named by label index …") after
    TensorFlow's import. None for other data, an archive with class_names
    (`listed_class_names`), and one the loader will refuse (it says why)."""
    from hubensemble.data import npz
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.validate import index_names

    try:
        scheme, rest = parse_spec(spec)
        if scheme != "npz":
            return None
        path = npz.locate_npz(rest)
        with npz._Archive(path) as archive:
            _, stored, _ = npz._members(archive.headers, path)
            if "class_names" in stored:
                return None
            labels = {key: npz._npz_labels(archive.read(stored[f"y_{key}"]),
                                           stored[f"y_{key}"], path)
                      for key in ("train", "val", "test") if f"y_{key}" in stored}
        if not labels:
            return None
        return index_names(labels, what=f"npz:{path}", fix="", compact=True)[0]
    except (DataError, OSError, ValueError, TypeError, IndexError):
        return None  # the loader says what is wrong


def data_keywords() -> dict[str, str]:
    """{keyword: DataArgs field} of every DataArgs field that is a data option of the table
    (hubensemble.options, record "data", from which DataArgs' fields take their defaults):
    the command line's data flags as keywords (`--no-flip`: flip=False, `--data-seed 3`:
    data_seed=3), so fit takes them as it takes its stage options. The keyword is the
    option's name, the field its `kw` (`data_seed` is the field `seed`: fit's own `seed` is
    the sweep's). Derived, never listed twice; `label_fn`, `reloadable` and `spec` are no
    option (Python's data_args only, and the data argument)."""
    fields = {f.name for f in dataclasses.fields(DataArgs)}
    return {o.name: o.kw for o in options.options_for(record="data") if o.kw in fields}


def as_data_args(value, keywords=None, *, base, who: str = "fit()") -> DataArgs | None:
    """The DataArgs of a public function's `data_args` argument `value` and its data option
    keywords `keywords` ({keyword: value}, `data_keywords`' names): `value` a DataArgs, a dict
    of its fields (a keyword's name too: {"data_seed": 3}) or None; `base()` the DataArgs a
    dict or keywords without a DataArgs start from (fit's: its data spec's). None when neither
    is given. TypeError, naming `who` and the way, for another type, a dict key that is no
    field ("did you mean"), or a field given both ways with two values; options.OptionError
    for a value outside an option's range (DataArgs' check). A new user's
    data_args={"flip": False} was refused with "e.g. data_args=DataArgs(spec, flip=False)
    (hubensemble.rundir.DataArgs)" and fit(flip=False) as an unknown option (stop 70)."""
    from hubensemble.text import closest_name

    names = data_keywords()
    fields = [f.name for f in dataclasses.fields(DataArgs) if f.name != "reloadable"]
    given = {names[k]: v for k, v in (keywords or {}).items()}
    if value is None and not given:
        return None
    if isinstance(value, dict):
        unknown = [k for k in value if not isinstance(k, str) or (k not in fields and
                                                                  k not in names)]
        if unknown:
            said = [f"{k!r}" + (f" (did you mean {hint}?)" if isinstance(k, str) and (
                hint := closest_name(k, [*fields, *names])) else "") for k in unknown]
            raise TypeError(f"{who} data_args has no field {', '.join(said)}; its fields are "
                            f"{', '.join(fields)}")
        value = {names.get(k, k): v for k, v in value.items()}
    elif value is not None and not isinstance(value, DataArgs):
        raise TypeError(f"{who} data_args must be a DataArgs, a dict of its fields or None, "
                        f"got {type(value).__name__} {value!r}; pass the data options as "
                        f"keywords, {who[:-1]}…, flip=False, data_seed=3), or "
                        "data_args={'flip': False}")
    start = value if isinstance(value, DataArgs) else None
    typed = value if isinstance(value, dict) else {}
    # A field set both ways with two values: a DataArgs' own value counts where it is not
    # the field's default (a DataArgs cannot say which fields were typed).
    held = {f.name: getattr(start, f.name) for f in dataclasses.fields(DataArgs)
            if start is not None and getattr(start, f.name) != f.default} | typed
    both = [k for k in given if k in held and held[k] != given[k]]
    if both:
        keyword = {v: k for k, v in names.items()}
        raise TypeError(f"{who} got " + ", ".join(
            f"{keyword[k]}={given[k]!r} and data_args' {k}={held[k]!r}" for k in both)
            + "; give each data option once")
    return dataclasses.replace(start or base(), **{**typed, **given})
