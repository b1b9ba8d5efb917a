"""Catalogue entries that cannot load on this machine, told from the file system alone: a
local path that does not exist, a ``keras:NAME`` weights file that is not there (no
TensorFlow, no network).

`rank` and `fit` say them before TensorFlow's import (3.5-15 s, ~660 MB): a catalogue whose
every module is such a path is refused at once, and the others are ranked without them
(`commands._missing_modules`). The words are the loader's own (`missing_path_words`, which
`hub.resolvers.LocalResolver` raises; `weights_file_words`, `hub.locate`'s), so a module is
said alike before and after TensorFlow.
A handle that names a host (tfhub.dev, Kaggle, a URL, gs://) may be in the module cache or
downloadable, and keras: / zoo: / keras-hub handles are built or fetched: those are left to
the loader.
"""

from __future__ import annotations

import os
import re

from hubensemble.catalogue_urls import variables_note
from hubensemble.errors import ModuleLoadError
from hubensemble.handlehere import stored_tfhub_url, was_recorded, written_as
from hubensemble.handles import HandleFormError, file_url_path, handle_kind
from hubensemble.pathnotes import sibling_note, weights_file_problem
from hubensemble.saidwords import Words, said
from hubensemble.text import escaped
from hubensemble.winpaths import windows_form

#: A handle's resolver prefix ("zoo" of ``zoo:demo/x``), as `hub.resolvers.handle_prefix` reads
#: it: two characters at least, so ``C:\\m`` and ``./a:b`` are local paths.
_PREFIX_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
#: The ModuleLoadError stage of a ``keras:NAME`` entry's `weights:` file that cannot be used
#: (`weights_file_words`; `hub.locate` and `hub.introspect` raise it too): its own format's,
#: not "savedmodel", which a missing weights file was labelled though no SavedModel is read.
WEIGHTS_STAGE = "keras weights"


def missing_path_words(path: str, near: bool = True) -> str | None:
    """The loader's reason (str) for the local `path` (an absolute path, as a catalogue stores
    it) when nothing is there: "PATH does not exist; check the path", with what the path
    written means when it is not what was meant (`catalogue_urls.variables_note`: a
    ``$VARIABLE``, an unknown ``~user``, a dangling link, quotes) or, for a path written as
    Windows writes it, the form to write here (`winpaths.WindowsPath.advice`); None when the
    path exists (a file, a folder, a link to one). When its folder exists and holds an entry
    the last name mistypes (`text.closest_name`, git's "did you mean" rule), that entry's path
    is offered: "…/efficientnet_lite0_imagent does not exist; did you mean
    …/efficientnet_lite0_imagenet?" (normalised: "/w/./mods/m0" was offered). `near`
    False: never (a run's recorded path, `as_written`: a sibling there is another module)."""
    if os.path.exists(path):
        return None
    form = windows_form(path)
    if form:
        return f"{path} {form.advice(escape=False)}"
    near_note = sibling_note(os.path.normpath(path)) if near else ""
    return f"{path} does not exist" + (variables_note(path) or near_note or "; check the path")


#: The way on for an absolute local handle with nothing there (`as_written`): a run keeps
#: the path each module had when it was ranked, and loads it from there.
MOVED_HINT = (", or put the module back there if it was moved or deleted (a run loads each "
              "module from the path it was ranked from)")
#: The other way on (`moved_hint`): the same module at a new place is no change of the
#: catalogue (`modulemoves`); user 479 was told only to move the folder back.
POINT_AT = Words(", or point the catalogue's handle at its new place and run ",
                 ", or point the catalogue's handle at its new place and call ")
#: The fit named when no run is known (the loader's words, `hub.localresolver`).
ANY_FIT = Words("`hubensemble fit …`", "hubensemble.fit(…)")


def moved_hint(fit_again: str = "") -> str:
    """MOVED_HINT and POINT_AT in the caller's words (`lockwords.on_command_line`): the words
    after "check the path" of a module a run recorded that is not there. `fit_again`: the
    run's own whole fit in the caller's words (`rerun.fit_again`: "`hubensemble fit
    --catalogue /abs/c.yaml … --out /abs/RUN`", "hubensemble.fit(out='/abs/RUN', …)"), which
    pasted reuses every stage; "" (no run known): "`hubensemble fit …`", whose options, retyped
    short, were refused as changed, and --restart then discarded every trial (user 492)."""
    from hubensemble.lockwords import on_command_line

    form = "cli" if on_command_line() else "python"
    return (MOVED_HINT + said((POINT_AT,), form) + (fit_again or said((ANY_FIT,), form))
            + " again (the same module is no change)")


def as_written(path: str, problem: str, source: str = "", recorded: bool = False,
               fit_again: str = "") -> str:
    """`problem` (`missing_path_words`' str for the absolute local handle `path`) with the
    handle as the catalogue wrote it (`handlehere.written_as`), "'./m' (/cats/m, relative to
    the catalogue's folder) does not exist; check the path" (validate's words), or, for one
    written as TF Hub's PUBLISHER/MODEL/VERSION (or, unknown, read so from the folder of `source`,
    "FILE:LINE"), its tfhub.dev URL (`handlehere.stored_tfhub_url`). The one rule of rank's
    words before TensorFlow (`missing_here`) and the resolver's (`hub.localresolver`), so a
    module is said once; "./google/bit/m-r50x1/1" was told TF Hub's URL. Any other absolute
    path that is gone is told `moved_hint` (a run's module folder moved: put it back, or point
    the catalogue at it).
    `recorded`: `path` is a handle a run recorded (tune, export, predict, a restart's check):
    its words are `missing_path_words(path, near=False)`'s with `moved_hint`, never a sibling
    folder's "did you mean" (m1 beside a moved m0 is another network: pasting it swaps
    models); a path given now (`recorded` False) keeps its sibling. `fit_again`: the run's
    own fit, which `moved_hint` names (`rerun.fit_again`)."""
    if path.startswith("file://"):  # the path it names, as the resolver reads it; a URL is
        try:  # written as a path: no slug (`source` unread)
            path, source = file_url_path(path), ""
        except HandleFormError:
            return problem
    if recorded and os.path.isabs(path):  # no sibling, and the way on: put it back
        problem = missing_path_words(path, near=False) or problem
    written = written_as(path)
    url = stored_tfhub_url(path, source, written)
    if url:  # "google/bit/m-r50x1/1" in a catalogue: handlehere's one rule, validate's words
        return (problem.removesuffix("; check the path")
                + f" (read as a local path: for TF Hub's module write handle: {url})")
    if written and problem.startswith(f"{path} "):  # named as written and as read
        # validate's words (handlewarnings): "'./m' (/cats/m, relative to the catalogue's
        # folder)"; rank said "'./m' (relative to the catalogue's folder: /cats/m)"
        said = (f"'{escaped(written)}' ({escaped(path)}, relative to the catalogue's folder)"
                + problem[len(path):])
        return said + (moved_hint(fit_again) if recorded and said.endswith("; check the path")
                       else "")
    if problem.endswith("; check the path") and os.path.isabs(path):
        # an absolute path, as a run keeps each: tune, export and predict of a run whose
        # module folder moved said only "check the path" (a path no one there had typed)
        return problem + moved_hint(fit_again)
    return problem


def local_path_problem(handle: str) -> str | None:
    """The loader's reason (str, without the stage and handle) why the catalogue `handle`
    cannot load here when it is a local path (no resolver prefix, or ``file://``) with
    nothing there, or a ``file://HOST/…`` URL this system cannot read; None for any other
    handle (one that exists, or one a resolver fetches or builds)."""
    if handle_kind(handle) != "local":
        return None
    prefix = _PREFIX_RE.match(handle)
    if prefix and prefix.group(1).lower() != "file":
        return None  # a plug-in resolver's (hub.resolvers.resolver_for)
    if prefix:
        try:
            path = file_url_path(handle)
        except HandleFormError as e:
            return str(e)
    else:
        path = handle
    return missing_path_words(path)


#: A `weights:` file's name and what a relative one is read from, as a catalogue's author and
#: a Python caller (load_module, HubLayer: its keyword) are told them (`saidwords.said`).
# `catalogue add` (describe_module) takes --weights, relative to the working folder as a call's
WEIGHTS_NAMED = Words("`weights:` on the entry", "weights=", "--weights")
RELATIVE_TO = Words("the catalogue's folder", "the working folder", "the working folder")


def weights_file_words(weights: str, form: str = "yaml") -> tuple[str, str] | None:
    """(the path, the loader's reason) when the `weights:` file of a ``keras:NAME`` entry (a
    path, or a ``file://`` URL) is not a file here: "the weights file PATH does not exist;
    check `weights:` on the entry (…)", with what the path written means (`variables_note`,
    a Windows form) as for a handle; or is a file that holds no weights by its first bytes
    (`pathnotes.weights_file_problem`: empty, a web page, cut short; or unreadable): "the
    weights file PATH is not an HDF5 file: it holds nothing (0 bytes); replace it …".
    `form`: "yaml", a catalogue's words, "python", a call's ("check weights= (relative
    paths are relative to the working folder)": load_module and HubLayer were told of "the
    entry" of no catalogue), or "cli", `catalogue add`'s ("check --weights (… the working
    folder)": it was told "the catalogue's folder", which its paths are not relative to).
    None when it is a file of the right kind (`hub.locate` raises these words, stage
    WEIGHTS_STAGE, whatever went wrong: an empty file was "[load]", a missing one
    "[keras weights]")."""
    path = file_url_path(weights) if weights.startswith("file://") else weights
    if os.path.isfile(path):
        # empty, a web page, cut short: what is wrong, under the same stage as missing
        problem = weights_file_problem(path)
        return (path, f"{problem}; replace it with the weights file, or check "
                      + said((WEIGHTS_NAMED,), form)) if problem else None
    windows = windows_form(path)  # kept as written (handles.stored_weights)
    return path, (f"the weights file {path} " + (
        windows.advice(escape=False) if windows else "does not exist" + variables_note(path))
        + said(("; check ", WEIGHTS_NAMED, " (relative paths are relative to ", RELATIVE_TO,
                ")"), form))


def missing_here(specs, recorded: bool | None = None,
                 fit_again: str = "") -> list[tuple[object, ModuleLoadError]]:
    """[(spec, ModuleLoadError)] of the catalogue entries `specs` (ModuleSpec) whose handle is
    a local path with nothing there (`local_path_problem`: stage "local path"), or a
    ``keras:NAME`` whose `weights:` file is not there (`weights_file_words`: stage
    WEIGHTS_STAGE, "keras weights"), in their order (a handle written relative as TF Hub's
    PUBLISHER/MODEL/VERSION told its tfhub.dev URL, `handlehere.stored_tfhub_url`); each
    error is the one the loader raises for it (the module and handle named), whose text
    `rank` records as the module's reason. `recorded`: `specs` are a run's records
    (`as_written`: put back, no sibling), not a catalogue read now; None: as the loader
    tells each (`handlehere.was_recorded`: read from run.json, not a catalogue, last).
    `fit_again`: the run's own fit (`rerun.fit_again`), named in the put-back words."""
    found = []
    for spec in specs:
        problem, stage = local_path_problem(spec.handle), "local path"
        if problem:
            problem = as_written(spec.handle, problem, getattr(spec, "source", "") or "",
                                 was_recorded(spec.handle) if recorded is None else recorded,
                                 fit_again)
        weights = getattr(spec, "weights", None)
        if problem is None and handle_kind(spec.handle) == "keras" and weights not in (
                None, "imagenet"):
            problem, stage = (weights_file_words(weights) or (None, None))[1], WEIGHTS_STAGE
        if problem is not None:
            found.append((spec, ModuleLoadError(problem, module=spec.name, handle=spec.handle,
                                                stage=stage)))
    return found
