"""`catalogue validate`'s warnings about local handles and `weights:` files on this machine
(`local_handle_warnings`: missing, written as Windows writes paths, holding no module or no
weights) and the FILE:LINE a warning about one field points at (`field_source`). Reads the
file system (what a path holds: `localfiles`), never the network; no TensorFlow."""

from __future__ import annotations

import os
import re

from hubensemble.catalogue_urls import variables_note
from hubensemble.handlehere import stored_tfhub_url, written_as
from hubensemble.handles import handle_kind
from hubensemble.localfiles import file_not_module, local_source, modules_inside
from hubensemble.pathnotes import from_defaults, sibling_note, weights_file_problem
from hubensemble.savedmodel_calls import saved_model_pb_problem
from hubensemble.text import escaped
from hubensemble.winpaths import windows_form


def field_source(spec, field) -> str:
    """"FILE:LINE" of the line where the catalogue wrote `field` of entry `spec`
    (`catalogue.ModuleSpec.field_source`), else the entry's `source` (a record without field
    lines): a warning about one field points at it, as a problem of the field does (the
    warnings named the entry's `- name:` line)."""
    where = getattr(spec, "field_source", None)
    return where(field) if callable(where) else spec.source


def local_handle_warnings(specs) -> list[str]:
    """A warning line per local handle or `weights:` file that does not exist on this machine
    (not an error: the catalogue may be meant for another machine, where rank runs), with the
    URL a mistyped scheme probably meant or, for one written as Windows writes paths, the
    form to write here (`winpaths.WindowsPath.advice`), or that exists but holds no module
    (`local_source`), or a weights file that holds no weights (`pathnotes.weights_file_problem`,
    rank's rule: empty, text, not HDF5, cut short)."""
    def said(value) -> str:  # as the file holds it: repr() doubled each backslash, naming
        return f"'{escaped(value)}'"  # a path no one wrote

    notes = []
    for spec in specs:
        weights, taken = getattr(spec, "weights", None), from_defaults(spec, "weights") or ""
        if weights not in (None, "imagenet") and not os.path.exists(weights):
            form = windows_form(weights)
            notes.append(f"warning: {field_source(spec, 'weights')}: {taken}weights file "
                         f"{said(weights)} "
                         + (form.advice(escape=False) if form else "does not exist on this "
                            "machine" + (variables_note(weights) or sibling_note(weights)))
                         + "; rank will skip it here")
        elif weights not in (None, "imagenet") and os.path.isfile(weights) and (
                problem := weights_file_problem(weights)):  # rank's rule and words
            notes.append(f"warning: {field_source(spec, 'weights')}: {taken}{escaped(problem)}; "
                         "rank will skip it")
        if handle_kind(spec.handle) != "local":
            continue
        at = field_source(spec, "handle")
        if os.path.exists(spec.handle):
            if os.path.isfile(spec.handle) and local_source(spec.handle) is None:
                notes.append(f"warning: {at}: {escaped(file_not_module(spec.handle))}; rank "
                             "will skip it")
            elif local_source(spec.handle) == "saved-model" and (
                    problem := saved_model_pb_problem(spec.handle)):  # empty, text, cut short
                notes.append(f"warning: {at}: {escaped(problem)}; rank will skip it")
            elif local_source(spec.handle) is None:  # rank's test (hub.resolvers.resolve)
                notes.append(f"warning: {at}: handle {said(spec.handle)} holds no module "
                             "(no saved_model.pb, .keras/.h5 file or keras-hub preset)"
                             + modules_inside(spec.handle) + "; rank will skip it")
            continue
        form = windows_form(spec.handle)
        if form is not None:  # C:\models\m: the catalogue was written for Windows
            notes.append(f"warning: {at}: handle {said(spec.handle)} "
                         f"{form.advice(escape=False)}; rank will skip it here")
            continue
        written = written_as(spec.handle)
        named = said(spec.handle) if written is None or stored_tfhub_url(
            spec.handle, spec.source, written) else (  # "./m": a path, as written and as read
            f"{said(written)} ({escaped(spec.handle)}, relative to the catalogue's folder)")
        text = (f"warning: {at}: handle {named} does not exist on this machine"
                + (variables_note(spec.handle) or sibling_note(spec.handle)))
        host = re.search(r"(?:^|/)((?:www\.)?(?:tfhub\.dev|kaggle\.com))/", spec.handle)
        if host:
            text += f" (read as a local path: for a URL write https://{host.group(1)}/...)"
        elif url := stored_tfhub_url(spec.handle, spec.source, written):  # handlehere's rule
            text += f" (read as a local path: for TF Hub's module write handle: {url})"
        notes.append(text + "; rank will skip it here")
    return notes
