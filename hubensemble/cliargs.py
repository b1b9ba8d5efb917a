"""The argument groups that several sub-commands of the command line share (the data
group, fit's options after it) and the data they name: `cli`'s, and tools/vtab.py's.
TensorFlow-free."""

from hubensemble import arguments, options
from hubensemble.terminal import say

DATA_SPEC_HELP = "tfds:NAME[:CONFIG], folder:PATH, npz:PATH or sklearn:digits"
CATALOGUE_HELP = "catalogue YAML file(s) listing the modules (see docs/catalogue.md)"

# The option groups of `fit` (and `demo`, tools/vtab.py) after the data group, in --help order.
FIT_GROUPS = ("rank", "selection", "tune", "ensemble", "budget", "export", "evaluate")


def add_data_args(p, required=True, command="fit"):
    """--data SPEC and the data options of `command` (options.GROUPS["data"])."""
    g = p.add_argument_group(options.GROUPS["data"])
    g.add_argument("--data", required=required, metavar="SPEC", help=DATA_SPEC_HELP)
    arguments.add_group(p, command, "data", container=g)


def data_args_from(args):
    """The DataArgs of a parsed command line (--data and the data options)."""
    from hubensemble.rundir import DataArgs

    values = options.kwargs_for("data", args)
    return DataArgs(spec=args.data, **{**values, "splits": dict(values["splits"] or ()) or None})


def load_data(args, *, said=True):
    """(DataArgs, Task) of the command line; the task summary to stderr unless -q, and to the
    run's log, unless `said` is False (fit: pipeline.fit says it, for Python callers too)."""
    from hubensemble.data.folder import warn_class_notes
    from hubensemble.rundir import Run
    from hubensemble.dataargs import log_skips

    data_args = data_args_from(args)
    task = data_args.load(summary_follows=True)  # said here, or by fit (said=False)
    if said:
        restart = getattr(args, "restart", False)
        listed = Run(args.out).skipped_list_for(task, restart=restart)
        say(args, task.summary(skipped_in=listed))
        log_skips(task, after_summary=True, skipped_in=listed)
        if Run(args.out).new_task(task, restart=restart):  # once per run (data.folder)
            warn_class_notes(task)
    return data_args, task


def add_fit_args(p):
    """Every option of `fit` except the data group (demo and tools/vtab.py use it too)."""
    arguments.add_arguments(p, "fit", FIT_GROUPS, skip=("data",))
