"""fit's arguments, checked before its run folder is made: the catalogue's module specs, the
folders and the data (a spec or a Task), so that a refused fit leaves no folder, log or lock
(the checks every stage function shares are `hubensemble.stageargs`')."""

import dataclasses

from hubensemble.rundir import DataArgs
from hubensemble.stageargs import catalogue_specs, folder  # noqa: F401 - fit's
from hubensemble.text import described


def check_paths(*, out, export, cache_dir) -> None:
    """fit's folder arguments as the command line's flags take them (`stageargs.folder`):
    `out` a path (str or os.PathLike), `export` and `cache_dir` one or None. TypeError for
    another type (out=None said "expected str, bytes or os.PathLike object, not NoneType");
    OptionError for "" (the flags' 'must be a path, not empty'; cache_dir's by the options
    table's rule): out="" wrote a run into the working folder, and cache_dir="" was refused
    only once the run folder was made, leaving it behind."""
    folder("fit", "out", out)
    folder("fit", "export", export, optional=True)
    folder("fit", "cache_dir", cache_dir, optional=True)


def check_out_of_other_runs(out) -> None:
    """RunError when fit's `out` lies inside the folder of another run (a folder holding
    run.json: its export's, its candidates' place), in fit's words ("--out" on the command
    line, "out" from Python), before the run folder is made: `fit --out "run a/export"`
    was told "run a/export/export is inside the run folder …" (its export's path, checked
    by formats.check_export_target), and with --export elsewhere fit ran its run inside the
    other one. Paths only (links resolved)."""
    import os
    import pathlib

    from hubensemble.errors import RunError
    from hubensemble.formats import RUN_FILE
    from hubensemble.lockwords import option_word

    flag = option_word("--out", "out")
    for parent in list(pathlib.Path(os.path.realpath(out)).parents)[:-1]:
        if (parent / RUN_FILE).is_file():
            raise RunError(f"{flag} {os.fspath(out)} is inside the run folder {parent} of "
                           f"another run (its export, or files its commands own): choose "
                           f"another {flag} folder outside it")


def check_data(data, data_args, *, out, export):
    """fit's `data_args` for `data`: a data spec (str; `data_args` gives the other load_task
    options) is checked as the command line checks it before its run folder (`check_spec`,
    and `out` and `export` outside a folder: spec's folder: DataError) and returned as the
    DataArgs to load; a `Task` is checked by `validate_task` (DataError with load_task's
    message: a split's labels out of range or not one per image, changed since the Task was
    made, an empty split, fewer than 2 classes, a class of fewer training examples than
    `data_args`' min_per_class, else DataArgs' default, which rank then applies), and
    `data_args` is returned unchanged
    (None: fit records the Task's source), `out` and `export` checked outside the image
    folder the Task was loaded from as for a spec. TypeError for another type."""
    from hubensemble.data import Task, check_spec, validate_task
    from hubensemble.data.specs import check_outside_data, data_way

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
        # With rank's min_per_class (pipeline: DataArgs' default without data_args): a class
        # of 1 example passed here with 0 and was refused by rank, leaving the run folder.
        validate_task(data, min_per_class=(data_args or DataArgs.of_task(data)).min_per_class)
        # A Task load_task read from a folder: a run inside it is read as a class of it (it
        # was refused by rank in its words, "out_dir", once the run folder was made).
        spec = (data_args.spec if data_args else None) or data.spec
        if isinstance(spec, str):
            check_outside_data(spec, {"out": out, "export": export},
                               whose=f"the Task's data, {spec}")
    else:
        raise TypeError(f"fit() data must be a data spec (a str such as 'sklearn:digits', "
                        f"'folder:PATH' or 'npz:FILE'; see docs/data.md) or a "
                        f"hubensemble.data.Task, got {described(data)}; {data_way(data)}")
    return data_args
