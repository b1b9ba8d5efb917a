"""Hub modules: resolvers (a registry by handle prefix), sha256, safety scan, the module runtime.

Sub-modules, one concern each:

* `resolvers` — handle -> local path (TF Hub, Kaggle, http(s)/gs archives, gs:// folders and
  remote .keras files copied into the cache, local folders and files; other prefixes such as
  ``zoo:`` registered by plug-ins), tensorflow_hub's cache, checksums, content fingerprints;
* `archive` — a downloaded module archive unpacked safely (paths, links, checksums, size);
* `remote` — every remote read bounded in time (gs:// included);
* `safety` — the graph scan that refuses modules able to reach outside their inputs;
* `locate` — handle -> verified, scanned `ModuleFiles` for every kind of source;
* `sources` — the Keras-built modules: ``keras:NAME`` architectures (and their ImageNet
  weights in Keras' cache), keras-hub presets, and .keras/.h5 files through `kerasfiles`
  (which loads such a file in Keras' safe mode and cuts it at its embedding);
* `runtime` — `ModuleRuntime`: the one way a module is loaded and called (value range,
  resize, input dtype, `training` argument, output) by rank, HubLayer and the export, for a
  reusable SavedModel, a SavedModel signature (`SignatureModule`) or a Keras model;
* `loadmodule` — `open_module` (a located module -> its object and `CallSignature`) and
  `load_module`, the runtime's loading half (re-exported by `runtime`);
* `savedmodels` — a located SavedModel loaded as it comes (`load_saved_model`) and one of
  its signatures as a module (`SignatureModule`), the runtime's SavedModel half;
* `layer` — `HubLayer`, the Keras 3 layer built on the runtime;
* `notices` — a module's load-time warnings, said once per process and kept with the
  embedding cache (`module_warning`, `captured`);
* `writer` — `write_hub_module` (a leaf module: imports nothing of hubensemble but `fileio`,
  for its temp folder and its stop-safe swap);
* `sublayers` — every Keras layer a model or a user's own layer holds (`layers_within`: how
  the writer, the export and the cost stage find HubLayers; a leaf);
* `tfhub` — tensorflow_hub imported without setuptools' ``pkg_resources`` (a leaf module).
"""

# TensorFlow first, by _tf's rule (without its C++ start-up notices)
from hubensemble._tf import keras, tensorflow  # noqa: F401 - Keras' backend checked
# tensorflow_hub next, before the sub-modules that import it by name (resolvers): its import
# needs pkg_resources, which setuptools 82 removed (tfhub imports it with a stand-in)
from hubensemble.hub import tfhub  # noqa: F401
from hubensemble.hub.layer import HubLayer, hub_layer_from_spec
from hubensemble.hub.resolvers import (ENTRY_POINT_GROUP, ArchiveResolver, LocalResolver,
                                       classify_resolution_error, file_sha256, handle_prefix,
                                       kaggle_download_url, known_prefixes, module_fingerprint,
                                       register_resolver, resolve, resolver_for)
from hubensemble.hub.locate import (ModuleFiles, locate, locate_spec,
                                    recorded_by_earlier_rule)
from hubensemble.hub.resolvers import local_source, pinned_file
from hubensemble.hub.runtime import (INPUT_DTYPES, VALUE_RANGES, CallSignature, LoadedModule,
                                     ModuleRuntime, SignatureModule, load_module,
                                     load_saved_model, open_module, to_value_range)
from hubensemble.hub.safety import DENIED_OPS, DeniedOp, check_safe, scan_saved_model
from hubensemble.hub.writer import write_hub_module

__all__ = [
    "ENTRY_POINT_GROUP", "ArchiveResolver", "LocalResolver", "classify_resolution_error",
    "file_sha256", "handle_prefix", "kaggle_download_url", "known_prefixes",
    "module_fingerprint", "register_resolver", "resolve", "resolver_for",
    "INPUT_DTYPES", "VALUE_RANGES", "CallSignature", "LoadedModule", "ModuleFiles",
    "ModuleRuntime", "load_module", "load_saved_model", "locate", "to_value_range",
    "locate_spec", "recorded_by_earlier_rule", "local_source", "pinned_file",
    "SignatureModule", "open_module",
    "DENIED_OPS", "DeniedOp", "check_safe", "scan_saved_model",
    "HubLayer", "hub_layer_from_spec", "write_hub_module",
]
