"""Locating a module: handle -> verified, scanned local files (`ModuleFiles`), nothing run yet.

The first half of the module runtime (`hub.runtime` loads and calls what this finds): one
function, `locate`, for every kind of source — SavedModels (local, archives, gs:// folders),
Keras model files, keras-hub presets and ``keras:NAME`` architectures with their weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from hubensemble.catalogue_here import WEIGHTS_STAGE, weights_file_words
from hubensemble.catalogue_urls import url_case
from hubensemble.classifierhandles import HEAD_PASS
from hubensemble.errors import ModuleLoadError
from hubensemble.hub.ways import NEW_SHA256
from hubensemble.formats import unloadable_path
from hubensemble.handlehere import typed_by
from hubensemble.handles import file_url_path, source_kind
from hubensemble.kerasconfig import model_config
from hubensemble.hub import resolvers
from hubensemble.hub.resolvers import (file_sha256, graph_and_index_hash, local_source,
                                       module_fingerprint, resolve)
from hubensemble.hub.safety import check_safe


@dataclasses.dataclass(frozen=True)
class ModuleFiles:
    """A module resolved, verified (sha256) and scanned (safety), not yet loaded.

    ``path`` is the local file or folder it loads from (a SavedModel or keras-hub preset
    folder, a .keras/.h5 file, or the weights file of a ``keras:NAME`` architecture);
    ``kind`` says which: "saved-model", "keras-file", "keras-hub-preset" or
    "keras-application". ``fingerprint`` is its content key (with the ``layer`` /
    ``signature`` chosen, which change the embedding): rank keys its embedding cache on it
    without loading the module. ``layer``, ``signature``, ``input_size`` and ``trust`` are
    what loading it needs; ``content`` is the files' own key, before the ``layer`` /
    ``signature`` (`call_fingerprint` makes ``fingerprint`` from it).
    """

    handle: str
    path: str
    fingerprint: str
    name: str | None = None
    kind: str = "saved-model"
    layer: str | None = None
    signature: str | None = None
    input_size: tuple[int, int] | None = None
    trust: bool = False
    content: str = ""


def _digest(*parts):
    return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()


def call_fingerprint(content, layer=None, signature=None) -> str:
    """The fingerprint (sha256 hex) of a module whose files' key is `content`, called at
    `layer` / through `signature` (None: its default): `content` itself when both are None."""
    if layer is None and signature is None:
        return content
    return _digest(content, f"layer={layer}", f"signature={signature}")


def _history(node) -> list:
    """[layer name, node index, tensor index] of a functional layer's one inbound tensor: a
    Keras 3 node ({"args": [{"config": {"keras_history": [...]}}]}) or a tf.keras one
    ([[name, node, tensor, kwargs]]). Raises (ValueError, KeyError, …) for any other shape."""
    if isinstance(node, dict):
        (arg,) = node["args"]
        return list(arg["config"]["keras_history"])
    (ref,) = node
    return list(ref[:3])


def _conv_head(layers, history):
    """The index in a model config's ``layers`` of the 1x1 Conv2D a convolutional classifier
    head's logits come from (`sources._conv_head_input`'s rule, read from the config): from
    the output layer (``history``; None: a Sequential's last layer) back through
    `HEAD_PASS` layers. None when the output is not of that shape."""
    index = {x["config"]["name"]: i for i, x in enumerate(layers)}
    i = len(layers) - 1 if history is None else index[history[0]]
    while layers[i].get("class_name") in HEAD_PASS:
        if history is None:
            i -= 1
            continue
        (node,) = layers[i]["inbound_nodes"]
        i = index[_history(node)[0]]
    found = layers[i]
    if found.get("class_name") == "Conv2D" and list(found["config"].get("kernel_size", ())) \
            == [1, 1] and i > 0 and any(x.get("class_name") in ("Reshape", "Flatten")
                                        for x in layers[i + 1:]):
        return i
    return None


def keras_head_cut(path) -> bool:
    """Whether a Keras model file's default cut is at a convolutional classifier head
    (`_conv_head`: it has no Dense layer), read from its config, nothing loaded."""
    try:
        config = model_config(path)
        layers = config["config"]["layers"]
        if any(x.get("class_name") == "Dense" for x in layers):
            return False
        if config.get("class_name") == "Sequential":
            return _conv_head(layers, None) is not None
        outputs = config["config"]["output_layers"]
        (history,) = [outputs] if outputs and isinstance(outputs[0], str) else outputs
        return _conv_head(layers, history) is not None
    except Exception:  # noqa: BLE001 - any file or config not of this shape: not told
        return False


def keras_default_layer(path) -> str | None:
    """The name of the layer a Keras model file (.keras or .h5) is cut at when its entry names
    no ``layer:`` (`sources.load_model_file`): the layer whose output its last Dense layer
    takes, else (no Dense) the one a convolutional classifier head's 1x1 Conv2D takes
    (`_conv_head`), else its one output layer. Read from the file's config (a .keras zip's
    config.json, an .h5 file's "model_config" attribute: `model_config`), nothing loaded;
    None when that cannot be told (a nested or shared layer, a config of another shape, an
    unreadable file)."""
    try:
        config = model_config(path)
        layers = config["config"]["layers"]
        # A .keras config names each layer's module; an .h5 one (legacy) names none.
        dense = [i for i, x in enumerate(layers) if x.get("class_name") == "Dense"
                 and x.get("module", "keras.layers") == "keras.layers"]
        if config.get("class_name") == "Sequential":
            if not dense:
                head = _conv_head(layers, None)
                dense = [head] if head is not None else []
            return layers[dense[-1] - 1]["config"]["name"] if dense else (
                layers[-1]["config"]["name"])
        if dense:
            (node,) = layers[dense[-1]]["inbound_nodes"]
            history = _history(node)
        else:
            outputs = config["config"]["output_layers"]
            (history,) = [outputs] if outputs and isinstance(outputs[0], str) else outputs
            head = _conv_head(layers, history)
            if head is not None:
                (node,) = layers[head]["inbound_nodes"]
                history = _history(node)
    except Exception:  # noqa: BLE001 - any file or config not of this shape: not told
        return None
    if config.get("class_name") not in ("Functional", "Model") or list(history[1:]) != [0, 0]:
        return None
    return history[0] if isinstance(history[0], str) else None


def default_call(files: ModuleFiles, output_key=None) -> tuple[str, str | None]:
    """(fingerprint, output_key) of `files` called as its entry says (`files.layer`,
    `files.signature`, `output_key`), each written-out field that names what the module uses
    when it is left out made None: a SavedModel's ``signature: serving_default`` or only output
    (`savedmodel_calls.defaults_left_out`, saved_model.pb read), a Keras file's ``layer:``
    naming the layer it is cut at by default (`keras_default_layer`: a .keras file's config.json
    or an .h5 file's model config read). The embedding and cost caches key by it, so an entry
    that writes the default out (as `catalogue add` does) and one that leaves it out share their
    entries. Nothing is loaded."""
    layer, signature = files.layer, files.signature
    if files.kind == "saved-model" and (signature is not None or output_key is not None):
        from hubensemble.savedmodel_calls import defaults_left_out

        signature, output_key = defaults_left_out(files.path, signature, output_key)
    content = files.content or files.fingerprint
    if files.kind == "keras-file" and layer is not None and layer == keras_default_layer(
            files.path):
        layer = None
    if files.kind == "keras-file" and layer is None and keras_head_cut(files.path):
        # Before 2026-12-05 such a model was embedded whole (its class probabilities): a key
        # of its own, so no cache entry of that reading is served for the cut one.
        content = _digest(content, "cut=conv-head")
    return call_fingerprint(content, layer, signature), output_key


def locate(handle, *, name=None, sha256=None, trust=False, weights=None, layer=None,
           signature=None, input_size=None, hint_form="yaml") -> ModuleFiles:
    """Resolves ``handle``, verifies ``sha256`` and runs the safety scan (unless ``trust``).

    Nothing of the module runs. A SavedModel (also one in an archive or a gs:// folder) is
    scanned (`check_safe`); a ``keras:NAME`` architecture gets its ``weights`` ("imagenet",
    the default: Keras' file, fetched into Keras' cache when missing; or a local weights
    file); a ``kaggle://`` / ``hf://`` preset is fetched by keras-hub. ``sha256`` pins the
    archive, saved_model.pb, the .keras/.h5 file, the weights file or a preset's
    model.weights.h5 (a sharded preset's model.weights.json and shards:
    `resolvers.pinned_sha256`). Raises ModuleLoadError with the stage of `resolve` ("handle",
    "network", "archive", "checksum", "savedmodel") or "unsafe". A scheme and host in any
    case are read in lower case (`catalogue_urls.url_case`: one cache folder per module).
    ``hint_form``: whose words a `weights` refusal is in (`saidwords.said`): "yaml", a
    catalogue entry's ("`weights:` on the entry"), "python", a call's ("weights="), or "cli"
    `catalogue add`'s ("--weights").
    The handle's form is not checked here: its callers check it where it is given
    (ModuleSpec, also of run.json, as `handles.check_handle_form`; load_module; HubLayer), so
    a run's recorded handles meet one judge, the one they were first accepted by.
    """
    handle = url_case(handle)
    kind = source_kind(handle)
    size = tuple(int(v) for v in input_size) if input_size else None
    common = dict(handle=handle, name=name, layer=layer, signature=signature, input_size=size,
                  trust=bool(trust))
    if kind == "keras-application":
        path = _application_weights(handle, weights, size, name, hint_form)
        _check_pin(path, sha256, name, handle)
        content = _digest("keras-application", handle, file_sha256(path))
        return ModuleFiles(path=path, kind=kind, fingerprint=content, content=content, **common)
    if kind == "keras-hub":
        from hubensemble.hub import sources

        path = sources.fetch_preset(handle, module=name,
                                    deadline_seconds=resolvers.DOWNLOAD_DEADLINE)
        if local_source(path) != "keras-hub-preset":
            raise ModuleLoadError(f"keras-hub fetched {path}, which is not a preset folder",
                                  module=name, handle=handle, stage="savedmodel")
        # A valid file that is not the pinned one (a stale or changed preset) stays in the
        # loader's cache otherwise, failing every later run without a request.
        with resolvers.download_dropped_if_unloadable(handle, stages=("checksum",), path=path):
            _check_pin(path, sha256, name, handle, preset=True)
    else:
        # a missing local path told in its caller's words (`catalogue add`'s as a catalogue's)
        with typed_by("yaml" if hint_form == "cli" else hint_form):
            path = resolve(handle, name=name, sha256=sha256)
    kind = local_source(path)
    if kind == "saved-model" and (why := unloadable_path(path)):  # TF's names no cause
        raise ModuleLoadError(f"{why} (move or rename the module's folder)",
                              module=name, handle=handle, stage="savedmodel")
    if kind == "saved-model":
        with resolvers.download_dropped_if_unloadable(handle, stages=("savedmodel",)):
            check_safe(path, trust=trust, name=name, handle=handle)  # parses saved_model.pb
        fingerprint = module_fingerprint(path)
    elif kind == "keras-file":
        fingerprint = file_sha256(path)
    else:
        # A sharded preset's index and shards are read after the files of an unsharded one,
        # whose key is unchanged (a run or cache entry keyed by it is the same preset).
        fingerprint = _digest(*(file_sha256(os.path.join(path, f)) if os.path.exists(
            os.path.join(path, f)) else "-" for f in _PRESET_FILES), *(
            file_sha256(f) for f in _shard_files(path, name, handle)))
    return ModuleFiles(path=path, kind=kind, fingerprint=call_fingerprint(
        fingerprint, layer, signature), content=fingerprint, **common)


_PRESET_FILES = ("config.json", "model.weights.h5", "image_converter.json")


def _shard_files(path, name, handle):
    # A sharded preset's index and shards (none for an unsharded one); a bad index or a
    # missing shard is named now (loaders.preset_files_problem), not as an OSError of one file.
    try:
        files = [f for f in resolvers.pinned_files(path)
                 if os.path.basename(f) not in _PRESET_FILES]
        if all(os.path.isfile(f) for f in files):
            return files
    except (OSError, ValueError):
        pass
    from hubensemble.hub.loaders import preset_files_problem

    raise ModuleLoadError(f"the keras-hub preset {path} cannot be loaded: "
                          f"{preset_files_problem(path) or 'its weights cannot be read'}",
                          module=name, handle=handle, stage="load")


def earlier_fingerprints(path) -> dict[str, str]:
    """{content key: which hubensemble computed it} of the local SavedModel folder ``path``
    by the rules `module_fingerprint` followed before: the graph and the variables' index
    alone (before 7d94552, 2026-11-25), then with each ``variables.data-*`` shard's size
    (before c251b02, 2026-12-02). A run, candidate or cache entry of such a version records
    its module by that key; equal to the key of the files now, they are the same files (a
    change of the rule is not a change of the module: an export of a 679fffb run refused
    every member as "the module's files changed"). Reads the same files as
    `module_fingerprint` (the shards' sizes only)."""
    h = graph_and_index_hash(path)
    out = {h.hexdigest(): "hubensemble before 7d94552 (2026-11-25)"}
    variables = os.path.join(path, "variables")
    if os.path.isdir(variables):
        for name in sorted(os.listdir(variables)):
            if name.startswith("variables.data-"):
                h.update(f"{name}={os.path.getsize(os.path.join(variables, name))}".encode())
    out.setdefault(h.hexdigest(), "hubensemble before c251b02 (2026-12-02)")
    return out


def recorded_by_earlier_rule(recorded, files: ModuleFiles) -> str | None:
    """Which older hubensemble keyed `files` as `recorded` (a content key a run, candidate or
    cache entry holds that differs from ``files.fingerprint``), or None: the key is then of
    other files. Only a plain SavedModel folder (no layer / signature chosen) was keyed
    otherwise before (`earlier_fingerprints`)."""
    if (not recorded or files.kind != "saved-model" or files.layer is not None
            or files.signature is not None):
        return None
    return earlier_fingerprints(files.path).get(recorded)


def locate_spec(spec) -> ModuleFiles:
    """`locate` with the fields of a catalogue ModuleSpec."""
    return locate(spec.handle, name=spec.name, sha256=spec.sha256, trust=spec.trust,
                  weights=getattr(spec, "weights", None), layer=getattr(spec, "layer", None),
                  signature=getattr(spec, "signature", None), input_size=spec.input_size)


def _application_weights(handle, weights, input_size, name, form="yaml"):
    from hubensemble.hub import sources

    app = handle[len("keras:"):]
    if weights in (None, "imagenet"):
        return sources.fetch_imagenet_weights(
            app, input_size, module=name, timeout=resolvers.HTTP_TIMEOUT,
            deadline=sources.deadline_after(resolvers.DOWNLOAD_DEADLINE), form=form)
    path = file_url_path(weights) if weights.startswith("file://") else weights
    missing = weights_file_words(weights, form)  # rank and fit say it before TensorFlow too
    if missing:
        raise ModuleLoadError(missing[1], module=name, handle=handle, stage=WEIGHTS_STAGE)
    return path


def _check_pin(path, sha256, name, handle, *, preset=False):
    # ``path``: the pinned file, or with ``preset`` the preset's folder (its weights files:
    # resolvers.pinned_sha256).
    if not sha256:
        return
    actual = resolvers.pinned_sha256(path) if preset else file_sha256(path)
    if actual != sha256.lower():
        what = resolvers.pinned_what(path) if preset else os.path.basename(path)
        raise ModuleLoadError(
            f"sha256 of {what} is {actual}, the catalogue expects "
            f"{sha256.lower()}; refusing to load it", way=(
                ". If the file was legitimately updated, ", NEW_SHA256),
            module=name, handle=handle, stage="checksum")
