"""The exception types that hubensemble raises for problems a user can fix."""


class HubensembleError(Exception):
    """Base class: the CLI prints these as one clear message, without a traceback."""


class CatalogueError(HubensembleError):
    """A catalogue file is malformed; the message names file:line, the field and the fix."""


class DataError(HubensembleError):
    """A data spec cannot be read or the data cannot be used for the method."""


class ModuleLoadError(HubensembleError):
    """A module could not be resolved, verified or loaded.

    `stage` says where it failed: "handle" (no resolver for its form), "network", "archive",
    "checksum", "savedmodel", "unsafe", "output" (wrong rank or non-finite values), "input"
    (the module does not accept the images it is given) or "score" (the proxy could not be
    computed).
    """

    def __init__(self, message, *, module=None, handle=None, stage=None):
        self.module = module
        self.handle = handle
        self.stage = stage
        where = []
        if module:
            where.append(f"module {module!r}")
        if handle:
            where.append(f"handle {handle!r}")
        prefix = f"[{stage}] " if stage else ""
        super().__init__(prefix + (", ".join(where) + ": " if where else "") + message)


class RunError(HubensembleError):
    """A run directory is missing what a stage needs, or holds results from other inputs."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty.

    TensorFlow's errors carry multi-line graph dumps; a table row or a log line wants one line.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
