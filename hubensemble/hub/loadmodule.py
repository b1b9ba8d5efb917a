"""Loading a module outside the runtime: `open_module` (a located module -> the object to
call and its `CallSignature`) and `load_module` (a handle -> `LoadedModule`, its arguments
checked as HubLayer checks them: `check_source_fields`). Split from `hub.runtime` (which
re-exports these names) to keep each module one concern and under 700 lines."""

from __future__ import annotations

import dataclasses
import os

from hubensemble.errors import ModuleLoadError, checks_keywords
from hubensemble.hub import resolvers
from hubensemble.hub.callsig import CallSignature
from hubensemble.hub.locate import ModuleFiles, locate
from hubensemble.hub.savedmodels import SignatureModule, load_saved_model


# Locating and loading: a SavedModel's own (load_saved_model, SignatureModule) are in
# hub.savedmodels.

def open_module(files: ModuleFiles, *, output_key=None):
    """Loads a located module: (the object to call, its CallSignature).

    The object is a reusable SavedModel (its ``__call__``), a `SignatureModule`, or a Keras
    model (`hub.sources`). Load inside ``strategy.scope()`` when the variables must be
    distributed. Raises ModuleLoadError (stage "savedmodel" for a SavedModel with neither a
    reusable ``__call__`` nor a usable signature; see `hub.sources` for Keras models). A
    downloaded SavedModel or Keras file that cannot be loaded is removed from the cache
    first (`resolvers.download_dropped_if_unloadable`), and the error says so.
    """
    from hubensemble.hub import sources

    if files.kind == "keras-application":
        model = sources.build_application(files.handle[len("keras:"):], files.path,
                                          files.input_size, module=files.name)
        return model, CallSignature.of_keras(model, name=files.name, handle=files.handle)
    if files.kind == "keras-file":
        with resolvers.download_dropped_if_unloadable(files.handle, stages=("load",)):
            model = sources.load_model_file(files.path, layer=files.layer, trust=files.trust,
                                            module=files.name, handle=files.handle)
        return model, CallSignature.of_keras(model, name=files.name, handle=files.handle)
    if files.kind == "keras-hub-preset":
        model = sources.load_preset(files.path, trust=files.trust, module=files.name,
                                    handle=files.handle).model
        return model, CallSignature.of_keras(model, name=files.name, handle=files.handle)
    # A downloaded module that does not load is not kept: the next run fetches it again.
    with resolvers.download_dropped_if_unloadable(files.handle, stages=("savedmodel",)):
        obj = load_saved_model(files)
    if files.signature is None and callable(obj) and hasattr(obj, "variables"):
        return obj, CallSignature.of(obj, name=files.name, handle=files.handle)
    if getattr(obj, "signatures", None):
        module = SignatureModule(obj, files, output_key)
        return module, module.call_signature()
    # Name what it does hold (a tf.Module's own tf.functions), so the fix can name them.
    held = sorted(n for n in dir(obj) if not n.startswith("_") and n not in (
        "signatures", "graph_debug_info", "tensorflow_version", "tensorflow_git_version")
        and hasattr(getattr(obj, n, None), "concrete_functions"))
    fn = held[0] if held else "FN"
    raise ModuleLoadError(
        "not a reusable SavedModel: it needs __call__ and variables "
        "(https://www.tensorflow.org/hub/reusable_saved_models), or a signature; it has "
        + (f"the functions {', '.join(held)}, " if held else "no function to call, ")
        + ("no variables attribute" if callable(obj) else "no __call__") + " and no "
        "signature: save it again with one, tf.saved_model.save(module, DIR, signatures="
        f"module.{fn}.get_concrete_function(tf.TensorSpec([None, None, None, 3], "
        "tf.float32))), or give the module __call__ and a `variables` attribute",
        module=files.name, handle=files.handle, stage="savedmodel")


@dataclasses.dataclass
class LoadedModule:
    """What `load_module` returns: the loaded object and where it came from."""

    obj: object          # the reusable SavedModel, SignatureModule or Keras model
    path: str
    handle: str
    fingerprint: str
    output_dim: int | None


#: load_module's `fields` (`locate`'s keywords beside its own).
_FIELDS = ("weights", "layer", "signature", "input_size")


def _checked_arguments(function: str, handle, *, name, sha256, trust, fields):
    """(`handle`, `fields`) with an os.PathLike handle or weights as its text (`os.fspath`),
    a str handle's form checked (HandleFormError in a call's words, `load_module`), the
    other arguments checked: TypeError naming `function`'s argument, its type and what
    it takes (`load_module`; `text.typed`), and for a field not in `_FIELDS` (with "did you
    mean", `text.closest_name`)."""
    import numpy as np

    from hubensemble.handles import (HandleFormError, check_handle_form, check_weights,
                                     handle_kind)
    from hubensemble.inputsize import checked_input_size
    from hubensemble.text import closest_name, typed

    if isinstance(handle, os.PathLike):
        handle = os.fspath(handle)
    if not isinstance(handle, str):
        check_handle_form(handle)  # HandleTypeError: "handle must be a non-empty string, …"
    elif handle_kind(handle) != "local" or handle.startswith("file:") or (
            resolvers.handle_prefix(handle) is None):
        # HubLayer's rule: another prefix ("ab:c") is its plug-in resolver's to judge. A
        # str handle went unchecked to the resolvers: 'keras:MobileNetV3small' to a bare
        # KeyError, an unversioned tfhub.dev URL to the network.
        try:
            check_handle_form(handle)
        except HandleFormError as e:  # the way on as a call passes it, as HubLayer says it
            raise HandleFormError(f"handle {e.problem}", e.python_hint) from None
    for key in fields:
        if key not in _FIELDS:
            meant = closest_name(key, _FIELDS)
            raise TypeError(f"{function}() got an unexpected keyword argument {key!r}"
                            + (f" (did you mean {meant}?)" if meant else "")
                            + f"; its fields are {', '.join(_FIELDS)}")
    fields = dict(fields)
    if isinstance(fields.get("weights"), os.PathLike):
        fields["weights"] = os.fspath(fields["weights"])
    for key, value in (("name", name), ("sha256", sha256), ("weights", fields.get("weights")),
                       ("layer", fields.get("layer")), ("signature", fields.get("signature"))):
        typed(function, key, value, (str, type(None)), "a str or None" + (
            " (or os.PathLike: a weights file)" if key == "weights" else ""))
    typed(function, "trust", trust, (bool, np.bool_), "True or False")
    try:  # HubLayer's words: "w.txt" was "check `weights:` on the entry" (of no catalogue)
        check_weights(fields.get("weights"))
    except HandleFormError as e:
        raise HandleFormError(f"weights {e.problem}", e.python_hint) from None
    if fields.get("input_size") is not None:  # HubLayer's rule and words (`inputsize`)
        fields["input_size"] = checked_input_size(fields["input_size"], who=f"{function}()",
                                                  none_means="the module's own size")
    check_source_fields(f"{function}()", handle, fields)
    return handle, fields


def check_source_fields(who: str, handle: str, fields: dict) -> None:
    """ValueError "WHO FIELD=VALUE: problem; way on" for the first of `fields` (ModuleSpec
    field names: their values, checked) that the kind of module `handle` (a str) names does
    not take (`handles.source_problems`, the catalogue's rule), its way on as a call passes
    it (`handles.SourceProblem.python_hint`, as a ModuleSpec made in Python is told it):
    HubLayer's (`who` "HubLayer") and `load_module`'s (a signature or layer a keras:NAME
    does not take was ignored, an input_size below its smallest refused in Keras' words)."""
    from hubensemble.handles import source_problems

    for found in source_problems({"handle": handle, **fields}):
        raise ValueError(f"{who} {found.field}={fields[found.field]!r}: {found.problem}; "
                         f"{found.python_hint}")


@checks_keywords
def load_module(handle, *, name=None, sha256=None, trust=False, **fields) -> LoadedModule:
    """Resolves, verifies, scans and loads a module (`locate` + `open_module`; ``fields``:
    weights, layer, signature, input_size).

    ``output_dim`` is the last dimension of its rank-2 output, None when unknown. Load
    inside ``strategy.scope()`` when the variables must be distributed. Raises
    ModuleLoadError (see `locate` and `open_module`); before anything is read,
    handles.HandleFormError (a ValueError: "handle 'keras:MobileNetV3small' is not a
    keras.applications architecture; pass handle='keras:MobileNetV3Small' instead") for a str
    `handle` with no accepted form (`handles.check_handle_form`; a prefix of a plug-in
    resolver, "ab:c", is its resolver's to judge), TypeError
    naming the argument for a `handle` that is neither a str nor an os.PathLike (a local
    folder: its text; `handles.check_handle_form`'s HandleTypeError), a `name` or `sha256`
    that is neither a str nor None, or a `trust` that is not a bool (`text.typed`:
    trust="no" was true); HandleFormError (a ValueError) for a malformed `weights`
    (`handles.check_weights`), ValueError for a field the kind of module does not take
    (`check_source_fields`: HubLayer's rule and words).
    """
    handle, fields = _checked_arguments("load_module", handle, name=name, sha256=sha256,
                                        trust=trust, fields=fields)
    try:  # a call's words (`ModuleLoadError.said_as`): "pass output_key=KEY, …"
        files = locate(handle, name=name, sha256=sha256, trust=trust, hint_form="python",
                       **fields)
        obj, signature = open_module(files)
    except ModuleLoadError as e:
        raise e.said_as("python") from e
    try:
        dim = signature.output_dim(None)
    except ModuleLoadError:
        dim = None
    return LoadedModule(obj, files.path, handle, files.fingerprint, dim)
