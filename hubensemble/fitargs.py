"""fit's arguments, checked before its run folder is made: the catalogue's module specs and
the data (a spec or a Task), so that a refused fit leaves no folder, log or lock."""

import dataclasses
import os

from hubensemble.errors import HubensembleError
from hubensemble.rundir import DataArgs
from hubensemble.text import described


def catalogue_specs(catalogue) -> list:
    """The ModuleSpec records of fit's `catalogue`: one catalogue YAML path (str or
    os.PathLike) or ModuleSpec, or a list or tuple of them (paths read by `load_catalogues`).
    TypeError for another type, CatalogueError for a file that is missing or malformed,
    HubensembleError when no module is listed."""
    from hubensemble.catalogue import ModuleSpec, load_catalogues

    if isinstance(catalogue, (str, os.PathLike, ModuleSpec)):
        catalogue = [catalogue]
    wrong = ([catalogue] if not isinstance(catalogue, (list, tuple)) else
             [c for c in catalogue if not isinstance(c, (str, os.PathLike, ModuleSpec))])
    if wrong:
        raise TypeError(f"fit() catalogue must be a catalogue YAML path, a ModuleSpec, or a "
                        f"list of them (e.g. catalogue='catalogue/demo.yaml'), got "
                        f"{type(wrong[0]).__name__} {wrong[0]!r}")
    specs = [c for c in catalogue if isinstance(c, ModuleSpec)]
    paths = [c for c in catalogue if not isinstance(c, ModuleSpec)]
    specs += load_catalogues(paths) if paths else []
    if not specs:
        raise HubensembleError("the catalogue lists no modules")
    return specs


def check_paths(*, out, export, cache_dir) -> None:
    """fit's folder arguments as the command line's flags take them: `out` a path (str or
    os.PathLike), `export` and `cache_dir` one or None. TypeError for another type (out=None
    said "expected str, bytes or os.PathLike object, not NoneType"); OptionError for "" (the
    flags' 'must be a path, not empty'; cache_dir's by the options table's rule): out=""
    wrote a run into the working folder, and cache_dir="" was refused only once the run
    folder was made, leaving it behind."""
    from hubensemble import options

    for name, value, optional in (("out", out, False), ("export", export, True),
                                  ("cache_dir", cache_dir, True)):
        if value is None and optional:
            continue
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"fit() {name} must be a folder path (str or os.PathLike)"
                            f"{' or None' if optional else ''}, got {described(value)}")
        if name == "cache_dir":  # a table option: its own rule, as --cache-dir's
            options.check(name, os.fspath(value))
        elif not os.fspath(value):
            raise options.OptionError(f"fit() {name} {options.EMPTY_PATH}, got ''"
                                      + ("" if name == "out" else "; leave it out (None) for "
                                         "the default"))


def check_data(data, data_args, *, out, export):
    """fit's `data_args` for `data`: a data spec (str; `data_args` gives the other load_task
    options) is checked as the command line checks it before its run folder (`check_spec`,
    and `out` and `export` outside a folder: spec's folder: DataError) and returned as the
    DataArgs to load; a `Task` is checked by `validate_task` (DataError with load_task's
    message: a split's labels out of range or not one per image, changed since the Task was
    made, an empty split, fewer than 2 classes, ...), with `data_args`' min_per_class, else
    none (a Task is taken as its maker loaded it), and `data_args` is returned unchanged
    (None: fit records the Task's source). TypeError for another type."""
    from hubensemble.data import Task, check_spec, validate_task
    from hubensemble.data.specs import check_outside_data

    if isinstance(data, str):
        data_args = dataclasses.replace(data_args, spec=data) if data_args else DataArgs(
            spec=data)
        check_spec(data_args.spec, splits=data_args.splits,
                   val_fraction=data_args.val_fraction, test_fraction=data_args.test_fraction,
                   min_per_class=data_args.min_per_class, need_val=True,
                   data_dir=data_args.data_dir, label_key=data_args.label_key,
                   image_key=data_args.image_key)
        check_outside_data(data_args.spec, {"out": out, "export": export})
    elif isinstance(data, Task):
        # Here, not inside rank: a bad Task failed there per module ("Binding inputs to
        # tf.function failed"), blamed on the catalogue, and left a run folder behind.
        validate_task(data, min_per_class=data_args.min_per_class if data_args else 0)
    else:
        raise TypeError(f"fit() data must be a data spec (a str such as 'sklearn:digits', "
                        f"'folder:PATH' or 'npz:FILE'; see docs/data.md) or a "
                        f"hubensemble.data.Task, got {described(data)}; {_data_way(data)}")
    return data_args


def _data_way(data) -> str:
    """The way on from a `data` of the wrong type: a path's spec (folder: or npz:), else the
    one-line recipe of a Task of arrays (or their npz file). A list of arrays gave a
    TypeError with ~460 characters of numbers and no way on (a new-user check)."""
    if isinstance(data, os.PathLike):
        path = os.fspath(data)
        scheme = "folder" if os.path.isdir(path) else "npz"
        return f"for this path pass data={scheme + ':' + str(path)!r}"
    return ("for arrays in memory pass data=Task(name='mine', source='arrays', "
            "class_names=[...], train=Split(x_train, y_train), val=Split(x_val, y_val)) "
            "(from hubensemble.data import Split, Task), or np.savez('d.npz', x_train=..., "
            "y_train=..., x_val=..., y_val=...) and data='npz:d.npz'")
