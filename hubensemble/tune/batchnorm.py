"""The BatchNorm policy tune fine-tunes a module with, decided from its files before any
trial (`module_batchnorm`): the plan carries it, so every process of a sweep plans the same
trials; distill decides its student's the same way."""

from __future__ import annotations

import logging

from hubensemble.catalogue import ModuleSpec

log = logging.getLogger("hubensemble.tune.stage")  # its words are tune's, named so as before


def module_batchnorm(spec: ModuleSpec, policy: str) -> tuple[str, str | None]:
    """(policy, evidence) of one module for fine-tuning: `policy` "train" / "inference" as
    given; "auto" -> "inference" when the module's variables include BatchNorm moving
    statistics (evidence: the first such name), else "train". A SavedModel is located
    (resolved, verified, scanned) and its variable names read from saved_model.pb without
    loading it; a Keras file, application or preset is opened through the module runtime to
    list its variables. One that cannot be located or opened gets "train" (its trials will
    fail with the reason). Raises the OSError of the machine (`fileio.machine_error`: no
    room on the disk, a quota, a file too large) met while locating it (its download): it
    was logged as the module's "cannot read its variables … using train"."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.fileio import machine_error
    from hubensemble.hub import ModuleRuntime, locate_spec
    from hubensemble.hub.layer import resolve_batchnorm, saved_model_variable_names

    if policy != "auto":
        return resolve_batchnorm(policy, ())
    try:
        files = locate_spec(spec)
        if files.kind == "saved-model":
            names = saved_model_variable_names(files.path)
        else:
            runtime = ModuleRuntime.from_spec(spec, files=files)
            names = [getattr(v, "path", None) or v.name for v in runtime.variables]
            del runtime
    except (ModuleLoadError, OSError, ValueError) as e:
        disk = machine_error(e)  # a full disk or quota while it downloaded: the machine's,
        if disk is e:  # not the module's, and its trials would meet it again
            raise
        if disk is not None:
            raise disk from e
        log.warning("module %s: cannot read its variables to decide its BatchNorm policy (%s); "
                    "using train", spec.name, e)
        return "train", None
    return resolve_batchnorm("auto", names)
