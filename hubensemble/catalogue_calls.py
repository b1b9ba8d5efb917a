"""Whether a catalogue entry's `signature`, `output_key` and `layer` name what its local module
has, told from its files without TensorFlow: a SavedModel's signatures and their outputs
(`savedmodel_calls.read_calls`, its saved_model.pb) and a Keras model file's layers
(`kerasconfig.model_config`). `catalogue validate` says them by the field's `file:line`
(`call_problems`); rank refused them as the module loaded (`hub.savedmodels.SignatureModule`,
`hub.sources`' cut at `layer`, stage "savedmodel" / "output"), after TensorFlow's import,
where validate said "ok". A value taken from `defaults:` is said with the entry it applies to
(`pathnotes.from_defaults`).
"""

from __future__ import annotations

import os

from hubensemble.handles import handle_kind, local_source
from hubensemble.handlewarnings import field_source
from hubensemble.pathnotes import from_defaults
from hubensemble.text import names_listed


def _layer_names(path) -> list[str] | None:
    """The names of the layers of the Keras model file `path`, in order, from its config;
    None when the config cannot be read (loading it says why)."""
    from hubensemble.kerasconfig import model_config

    try:
        layers = model_config(path).get("config", {}).get("layers", ())
        return [str(x.get("name") or x["config"]["name"]) for x in layers]
    except Exception:  # noqa: BLE001 - an unreadable config: the loader says why
        return None


def call_problem(spec) -> tuple[str, str] | None:
    """(field, "problem; fix") when entry `spec` (a ModuleSpec-like record) names a
    `signature` its local SavedModel does not have, an `output_key` the signature it is
    called through does not return, or a `layer` its local Keras model file does not have;
    None otherwise, or when the files do not tell (a reusable ``__call__``'s outputs, an
    unreadable file: the loader says). The words are the loader's."""
    from hubensemble.savedmodel_calls import default_signature, read_calls

    if not isinstance(spec.handle, str) or handle_kind(spec.handle) != "local":
        return None
    kind = local_source(spec.handle)
    if kind == "keras-file" and getattr(spec, "layer", None) is not None and \
            os.path.isfile(spec.handle):
        names = _layer_names(spec.handle)
        if names is not None and spec.layer not in names:
            return "layer", (f"the model has no layer {spec.layer!r} (its last layers: "
                             f"{', '.join(names[-8:]) or 'none'}); write one of its layers' "
                             "names, or leave layer out (cut at its last Dense layer's input)")
        return None
    if kind != "saved-model":
        return None
    calls = read_calls(spec.handle)
    if calls is None:
        return None
    signature, key = getattr(spec, "signature", None), getattr(spec, "output_key", None)
    listed = names_listed(sorted(calls.signatures)) or "none"
    if signature is not None and signature not in calls.signatures:
        return "signature", (f"the SavedModel has no signature {signature!r} (signatures: "
                             f"{listed}); write one of them, or leave signature out"
                             + (" (its __call__ is used)" if calls.reusable else ""))
    if key is None or (signature is None and calls.reusable):
        return None  # __call__'s outputs are not in the signatures: the loader checks them
    name = signature or default_signature(calls)
    outputs = calls.signatures.get(name) if name is not None else None
    if outputs is not None and key not in outputs:
        return "output_key", (f"its signature {name!r} returns {list(outputs)}; write the "
                              "embedding's key")
    return None


def call_problems(entries) -> list[str]:
    """"FILE:LINE: field 'FIELD': problem; fix" (`call_problem`) for each entry of `entries`
    (ModuleSpecs, and `catalogue.PartialEntry`s whose field was not refused), at the field's
    line (the `defaults:` line for a value taken from there, naming the entry);
    `catalogue validate`'s errors, in the entries' order."""
    problems = []
    for spec in entries:
        found = call_problem(spec)
        if found is None or found[0] in getattr(spec, "refused", ()):
            continue
        field, problem = found
        problems.append(f"{field_source(spec, field)}: field {field!r}: "
                        f"{from_defaults(spec, field) or ''}{problem}")
    return problems
