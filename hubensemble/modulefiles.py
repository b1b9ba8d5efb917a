"""The files of a local module that hubensemble reads before loading it, without TensorFlow
(`catalogue validate` uses them, as the loaders do): a keras-hub preset folder's files and
weight shards (`preset_files_problem`, `shard_names`), and the files a catalogue's ``sha256``
pins (`pinned_files`, `pinned_sha256`), a SavedModel's variables files against its index
(`saved_model_files_missing`) and a Keras file's classes (`custom_classes`). hub.loaders and
hub.resolvers re-export them; `catalogue validate` warns with `local_handle_warnings`
(re-exported by catalogue)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os

from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from hubensemble.fileio import file_sha256
from hubensemble import handles, handlewarnings, samemodule, savedmodel_calls
from hubensemble.localfiles import keras_file_problem, local_source, what_bytes_are
from hubensemble.kerasconfig import model_config, weights_only_problem
from hubensemble.text import escaped

#: The JSON files of a keras-hub preset (preset_utils' CONFIG_FILE, METADATA_FILE and
#: IMAGE_CONVERTER_CONFIG_FILE): each holds a JSON object.
PRESET_JSON_FILES = ("config.json", "metadata.json", "image_converter.json")
#: A preset's weights (preset_utils.MODEL_WEIGHTS_FILE): Keras' HDF5 weights file.
PRESET_WEIGHTS_FILE = "model.weights.h5"
#: A sharded preset's weights instead (preset_utils.SHARDED_MODEL_WEIGHTS_CONFIG_FILE, what
#: keras-hub saves for a backbone above its max_shard_size): the index Keras'
#: ``save_weights("….weights.json", max_shard_size=…)`` writes, ``{"metadata": {…},
#: "weight_map": {VARIABLE PATH: SHARD or [SHARD, …]}}``, beside its HDF5 shards
#: (``model_00000.weights.h5``, …; keras.src.saving.saving_lib's ShardedH5IOStore, 3.15).
PRESET_SHARDS_INDEX = "model.weights.json"


def shard_names(index_path) -> list[str]:
    """The shard files (sorted, each once) that the sharded weights index ``index_path``
    (`PRESET_SHARDS_INDEX`) names in its ``weight_map``, as keras-hub 0.32 reads them
    (``KerasPresetLoader._get_sharded_filenames``). Raises OSError when it cannot be read and
    ValueError naming the file when it is not such an index or a shard is not a plain file
    name beside it (a path such as ``../x.h5`` would be fetched outside the preset's folder)."""
    name = os.path.basename(index_path)
    with open(index_path, "rb") as f:
        data = f.read()
    try:
        weight_map = json.loads(data).get("weight_map")
    except (ValueError, AttributeError):  # not JSON (UnicodeDecodeError too), not an object
        weight_map = None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{name} is not Keras' index of weight shards (a JSON object with a "
                         f"\"weight_map\"): it holds {what_bytes_are(data[:64])}")
    names = set()
    for shards in weight_map.values():
        for shard in shards if isinstance(shards, list) else [shards]:
            if (not isinstance(shard, str) or shard in ("", ".", "..")
                    or os.path.basename(shard) != shard or "/" in shard or "\\" in shard):
                raise ValueError(f"{name} names the shard {shard!r}, which is not a file name "
                                 "in the preset's folder")
            names.add(shard)
    return sorted(names)


def preset_weight_files(folder) -> list[str]:
    """The names of the files that hold the preset folder ``folder``'s weights, in the order
    a catalogue's ``sha256`` reads them: ``[model.weights.h5]`` when it is there, else
    ``[model.weights.json, SHARD, …]`` (`shard_names`; keras-hub loads the single file when
    both are there, as here), ``[]`` when neither is. Raises what `shard_names` raises."""
    if os.path.isfile(os.path.join(folder, PRESET_WEIGHTS_FILE)):
        return [PRESET_WEIGHTS_FILE]
    index = os.path.join(folder, PRESET_SHARDS_INDEX)
    if not os.path.isfile(index):
        return []
    return [PRESET_SHARDS_INDEX, *shard_names(index)]


def preset_files_problem(folder) -> str | None:
    """Why the preset folder ``folder`` (fetched by a loader, or a catalogue's local handle:
    `catalogue validate`, rank's `hub.locate`) cannot be a keras-hub preset, from its files'
    first bytes, or None: each of `PRESET_JSON_FILES` that is there must hold a JSON object
    and each weights file (`preset_weight_files`: `PRESET_WEIGHTS_FILE`, or a sharded
    preset's `PRESET_SHARDS_INDEX` and every shard it names) must be there and start with the
    HDF5 signature. Names the first file that does not and what it holds instead
    (`localfiles.what_bytes_are`: e.g. "text (it starts with '<!DOCTYPE html>…'), such as a web
    page …"). Reads at most the JSON files and 64 bytes of each weights file; raises nothing
    (an unreadable file is said to be so)."""
    for name in PRESET_JSON_FILES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return f"{name} cannot be read ({type(e).__name__}: {e})"
        try:
            if isinstance(json.loads(data), dict):
                continue
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            pass
        return f"{name} is not keras-hub's JSON: it holds {what_bytes_are(data[:64])}"
    try:
        weights = preset_weight_files(folder)
    except OSError as e:
        return f"{PRESET_SHARDS_INDEX} cannot be read ({type(e).__name__}: {e})"
    except ValueError as e:
        return str(e)
    for name in weights:
        if name == PRESET_SHARDS_INDEX:
            continue
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f"{name}, a shard {PRESET_SHARDS_INDEX} names, is missing"
        try:
            problem = keras_file_problem(path, name=name)
        except OSError as e:
            return f"{name} cannot be read ({type(e).__name__}: {e})"
        if problem:
            return problem
    return None


#: The file of a keras-hub preset folder that a catalogue's sha256 pins (a sharded preset:
#: its index and shards, `pinned_files`).
PRESET_WEIGHTS = "model.weights.h5"


def pinned_file(path):
    """The file a catalogue ``sha256`` pins for the local module at ``path``: the file itself
    (a .keras/.h5 model), a SavedModel's saved_model.pb, a keras-hub preset's
    model.weights.h5 (a sharded preset's model.weights.json, whose shards the pin covers too:
    `pinned_files`); None when ``path`` is none of these. Raises what `pinned_files` raises."""
    files = pinned_files(path)
    return files[0] if files else None


def pinned_files(path) -> list[str]:
    """The files whose bytes, one after the other, a catalogue ``sha256`` pins for the local
    module at ``path`` (`pinned_sha256`): one file, but for a sharded keras-hub preset its
    model.weights.json then each shard it names, sorted (`preset_weight_files`);
    ``[]`` when ``path`` is no module. Raises ValueError for a sharded preset's index that is
    not Keras' (`shard_names`), OSError when it cannot be read."""
    kind = local_source(path)
    if kind == "keras-file":
        return [path]
    if kind == "saved-model":
        return [os.path.join(path, "saved_model.pb")]
    if kind == "keras-hub-preset":
        return [os.path.join(path, f) for f in preset_weight_files(path) or [PRESET_WEIGHTS]]
    return []


def pinned_sha256(path) -> str | None:
    """The sha256 (64 lower-case hex digits) a catalogue ``sha256`` is compared with for the
    local module at ``path``: that of its `pinned_files` read one after the other (for one
    file, ``sha256sum FILE``; for a sharded preset, ``cat model.weights.json SHARD… |
    sha256sum`` with the shards in `pinned_files`' order), None when ``path`` is no module.
    Raises OSError (a file missing or unreadable) and what `pinned_files` raises."""
    files = pinned_files(path)
    if len(files) < 2:
        return file_sha256(files[0]) if files else None
    digest = hashlib.sha256()
    for name in files:
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def pinned_what(path) -> str:
    """The words for what `pinned_sha256` read for the module at ``path``, for a pin's error:
    the file's name, or "model.weights.json and its N shards (cat model.weights.json
    model_00000.weights.h5 … | sha256sum)". Raises what `pinned_files` raises."""
    names = [os.path.basename(f) for f in pinned_files(path)]
    if len(names) < 2:
        return names[0] if names else os.path.basename(path)
    return (f"{names[0]} and its {len(names) - 1} shard{'s' * (len(names) > 2)} "
            f"(cat {' '.join(names)} | sha256sum)")


def local_handle_warnings(entries) -> list[str]:
    """A warning line "warning: FILE:LINE: …" per entry of `entries` (ModuleSpec-like records
    with `source`) whose local handle or weights file is missing here or holds no module
    (`handlewarnings.local_handle_warnings`), or is an HDF5 file of weights only, no model
    (`kerasconfig.weights_only_problem`: tf.keras' ``save_weights("w.h5")``) or not a whole
    model file (`localfiles.keras_file_problem`: a saved web page, a copy cut short), or is a
    SavedModel folder without its variables index or one of its shards
    (`saved_model_files_missing`), or is a keras-hub preset folder whose files rank cannot
    load (`preset_files_problem`, the check of a preset that `hub.locate` and `catalogue add`
    load: a JSON file that is not JSON, a weights file or shard that is missing or not HDF5, a
    shard index that is not Keras'), or
    whose sha256 is not its files' where entries of the same local module disagree on it
    (`_pins_against_files`); `catalogue validate` says them. Reads the files' first bytes
    only, but for those pins, an .h5 handle's HDF5 attributes and the saved_model.pb of a
    SavedModel without variables/ (no TensorFlow). In the entries' order (each entry's
    warnings, then the next's), as validate reports."""
    notes = []
    for entry in entries:  # in the entries' order: each entry's warnings, then the next's
        notes += handlewarnings.local_handle_warnings([entry])
        source = (local_source(entry.handle)
                  if handles.handle_kind(entry.handle) == "local" else None)
        at = handlewarnings.field_source(entry, 'handle')
        if source == "keras-file":
            try:  # a page saved for the file, a copy cut short: as rank's load says it
                problem = keras_file_problem(entry.handle)
            except OSError:
                problem = None
            if problem:
                notes.append(f"warning: {at}: {escaped(problem)}; rank will skip it")
            elif entry.handle.lower().endswith((".h5", ".hdf5")) and (
                    problem := weights_only_problem(entry.handle)):
                notes.append(f"warning: {at}: handle '{escaped(entry.handle)}' is not a Keras "
                             f"model: {escaped(problem)}; rank will skip it")
            elif classes := custom_classes(entry.handle):
                named = ", ".join(f"'{escaped(c)}'" for c in classes[:3]) + (
                    f" and {len(classes) - 3} more" if len(classes) > 3 else "")
                notes.append(f"warning: {at}: handle '{escaped(entry.handle)}' is a Keras model "
                             f"that uses Python code of its own, not in the file (the class "
                             f"{named}), which hubensemble cannot import; rank will skip it: "
                             f"{CUSTOM_CODE_WAY}")
        elif source in _FOLDER_CHECKS:
            check, what = _FOLDER_CHECKS[source]
            if problem := check(entry.handle):
                notes.append(f"warning: {at}: handle '{escaped(entry.handle)}' is {what}: "
                             f"{escaped(problem)}; rank will skip it")
    return notes + _pins_against_files(entries)


#: The top-level packages Keras imports a saved object's class from when loading a model file
#: (keras.src.saving.serialization_lib._retrieve_class_or_fn, Keras 3.15): any other class,
#: or one saved with no module (a subclassed model, a layer registered with
#: ``register_keras_serializable``), loads only where its code is imported first.
KERAS_PACKAGES = ("keras", "keras_hub", "keras_cv", "keras_nlp")

#: The way on for a Keras model file whose classes are the user's own code (rank's load
#: error, `hub.sources.load_model_file`, and `catalogue validate`'s warning).
CUSTOM_CODE_WAY = ("save the model as a SavedModel where that code is importable, "
                   "`model.export(DIR)` (set input_size on the entry if it was traced at a "
                   "fixed size), and catalogue the folder, or rebuild it from Keras' own "
                   "layers (functional or Sequential)")


def custom_classes(path) -> list[str]:
    """The names (each once, in the config's order) of the classes the Keras model file
    `path` was saved with that Keras cannot load without the user's Python code: a saved
    object ({"module", "class_name", "config", …}) whose module is none or outside
    KERAS_PACKAGES (functions of "builtins" aside), or of such a package not installed here.
    Reads its config only (`kerasconfig.model_config`: a .keras file's config.json; a
    legacy .h5 config names no modules, so nothing is found in it); [] when it cannot be read
    (loading it says why)."""
    try:
        config = model_config(path)
    except Exception:  # noqa: BLE001 - not a model file: said by the checks before this one
        return []
    found, stack = [], [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("module", "builtins")
            if "class_name" in node and "config" in node and module != "builtins" and (
                    not isinstance(module, str) or module.split(".")[0] not in KERAS_PACKAGES
                    or importlib.util.find_spec(module.split(".")[0]) is None):
                name = str(node["class_name"])  # as Keras' "Could not locate class 'NAME'"
                found += [name] if name not in found else []
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


#: The most bytes `_pins_against_files` reads to hash a local module's pinned files: about
#: 0.15 s of CPU (hashlib's sha256 hashed 64 MiB at ~1.9 GB/s of CPU time on the CI machine).
PIN_READ_LIMIT = 256 << 20


def _pins_against_files(entries) -> list[str]:
    """A warning per entry whose sha256 is not the sha256 of its local module's files
    (`pinned_sha256`, as rank checks it), computed only where two entries of the
    same module (`samemodule.canonical_handle`) pin different values, one of them at least
    wrong, and the files to read are at most PIN_READ_LIMIT bytes: such a pair was said
    only as a duplicate, not which pin rank refuses."""
    by_module = {}
    for entry in entries:
        if getattr(entry, "sha256", None) and handles.handle_kind(entry.handle) == "local":
            by_module.setdefault(samemodule.canonical_handle(entry.handle), []).append(entry)
    notes = []
    for path, pinned in by_module.items():
        if len({entry.sha256 for entry in pinned}) < 2:
            continue
        try:
            if sum(os.path.getsize(f) for f in pinned_files(path) or [path]) > PIN_READ_LIMIT:
                continue
            actual, what = pinned_sha256(path), pinned_what(path)
        except (OSError, ValueError):  # missing or not a module: said above
            continue
        notes += [f"warning: {handlewarnings.field_source(entry, 'sha256')}: sha256 "
                  f"{entry.sha256[:12]}… is not the sha256 of "
                  f"the module's files ({escaped(what)}), {actual}; rank will refuse the entry "
                  f"(stage checksum): write sha256: '{actual}' or leave this entry out"
                  for entry in pinned if actual and entry.sha256 != actual]
    return notes


#: The way on for a SavedModel folder copied in part (`saved_model_files_problem`,
#: `saved_model_files_missing`).
WHOLE_SAVED_MODEL = ("a SavedModel is the whole folder, saved_model.pb with its variables/: "
                     "copy or download it whole again")


def saved_model_files_missing(path) -> str | None:
    """The variables file missing from the local SavedModel folder `path`, in the words of
    `saved_model_files_problem` (what rank's stage savedmodel says once ``tf.saved_model.load``
    failed), or None: no variables/variables.index where variables/ holds data shards or the
    saved_model.pb is TF 2's (it has an object graph: ``tf.saved_model.save`` writes the
    index even for a module without variables, whose load fails without it, TF 2.21), or a
    ``variables.data-I-of-N`` shard missing beside the index (N read from the shards' names;
    the one shard ``…-00000-of-00001`` when there is none). A TF 1 SavedModel without
    variables/ loads (its builder writes none for a graph without variables): None. Or a
    shard shorter than the index records (`_shard_cut_short`: "… is cut short: 300 of the
    413 bytes variables/variables.index records …"). Reads the folder's listing, its
    variables.index (at most INDEX_READ_LIMIT bytes), and its saved_model.pb only when
    variables/ holds neither; no TensorFlow (`catalogue validate` says it,
    `local_handle_warnings`)."""
    folder = os.path.join(path, "variables")
    try:
        names = set(os.listdir(folder))
    except OSError:
        names = set()
    shards = sorted(n for n in names if n.startswith("variables.data-"))
    if "variables.index" not in names:
        if shards or savedmodel_calls.has_object_graph(path):
            return (f"its variables are missing: no variables/variables.index in {path} "
                    f"({WHOLE_SAVED_MODEL})")
        return None
    count = shards[0].rpartition("-of-")[2] if shards else "00001"
    for i in range(int(count) if count.isdigit() else 0):
        name = f"variables.data-{i:05d}-of-{count}"
        if name not in names:
            return f"its variables file variables/{name} is missing ({WHOLE_SAVED_MODEL})"
    return _shard_cut_short(folder, count)


#: The most bytes of a variables.index `_shard_cut_short` reads (a large model's index is a
#: few hundred kB: one entry per variable).
INDEX_READ_LIMIT = 64 << 20


def _shard_cut_short(folder, count) -> str | None:
    """What `saved_model_files_missing` says of a variables.data shard shorter than the
    bytes its variables/variables.index records for it (the end of its last tensor: a copy or
    download that stopped, which TensorFlow says as "Read less bytes than requested" when the
    module loads), or None (every shard whole, or the index unreadable here: rank says it)."""
    index = os.path.join(folder, "variables.index")
    try:
        if os.path.getsize(index) > INDEX_READ_LIMIT:
            return None
        with open(index, "rb") as f:
            extents = bundle_extents(f.read())
        for shard, end in sorted(extents.items()):
            name = f"variables.data-{shard:05d}-of-{count}"
            size = os.path.getsize(os.path.join(folder, name))
            if size < end:
                return (f"its variables file variables/{name} is cut short: {size:,} of the "
                        f"{end:,} bytes variables/variables.index records ({WHOLE_SAVED_MODEL})")
    except (OSError, ValueError, DecodeError):
        return None
    return None


_TABLE_MAGIC = 0xdb4775248b80fb57  # tensorflow/core/lib/io/format.h, kTableMagicNumber


def _varint(data, at) -> tuple[int, int]:
    """(value, next offset) of the base-128 varint at `at` of `data`."""
    value = shift = 0
    while True:
        byte = data[at]
        value, at, shift = value | (byte & 0x7F) << shift, at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _block_entries(data, offset, size):
    """(key, value) of each entry of the table block at `offset` (`size` bytes, without its
    5-byte trailer: the compression type, then a CRC), keys prefix-compressed (LevelDB's
    block format, which TensorFlow's table keeps: tensorflow/core/lib/io/block.cc)."""
    if data[offset + size] != 0:  # compressed (snappy): not read here
        raise ValueError("a compressed table block")
    block = data[offset:offset + size]
    restarts = int.from_bytes(block[-4:], "little")
    end, at, key = len(block) - 4 * (restarts + 1), 0, b""
    while at < end:
        shared, at = _varint(block, at)
        unshared, at = _varint(block, at)
        length, at = _varint(block, at)
        key = key[:shared] + block[at:at + unshared]
        yield key, block[at + unshared:at + unshared + length]
        at += unshared + length


def bundle_extents(data: bytes) -> dict[int, int]:
    """{shard id: bytes that shard must hold} from the bytes `data` of a TensorFlow
    checkpoint's ``variables.index`` (a table, tensorflow/core/lib/io/format.h, of
    BundleEntryProto values by tensor name, tensorflow/core/protobuf/tensor_bundle.proto:
    shard_id 3, offset 4, size 5): the end (offset + size) of each shard's last tensor.
    Without TensorFlow; ValueError (or google.protobuf's DecodeError) for bytes that are not
    such a table."""
    if len(data) < 48 or int.from_bytes(data[-8:], "little") != _TABLE_MAGIC:
        raise ValueError("not a TensorFlow table (no magic number at its end)")
    _, at = _varint(data, len(data) - 48)  # the metaindex block's handle, unused
    _, at = _varint(data, at)
    index_offset, at = _varint(data, at)
    index_size, _ = _varint(data, at)
    extents = {}
    for _, handle in _block_entries(data, index_offset, index_size):
        offset, at = _varint(handle, 0)
        size, _ = _varint(handle, at)
        for key, value in _block_entries(data, offset, size):
            if not key:  # "": the BundleHeaderProto
                continue
            message = empty_pb2.Empty()
            message.ParseFromString(value)
            fields = {f.field_number: f.data for f in UnknownFieldSet(message)
                      if f.wire_type == 0}
            shard = fields.get(3, 0)
            extents[shard] = max(extents.get(shard, 0), fields.get(4, 0) + fields.get(5, 0))
    return extents


#: A local module folder's own check in `local_handle_warnings`, by `localfiles.local_source`:
#: (the function giving its problem or None, what such a folder is then).
_FOLDER_CHECKS = {
    "saved-model": (saved_model_files_missing, "a SavedModel copied in part"),
    "keras-hub-preset": (preset_files_problem, "a keras-hub preset that cannot be loaded"),
}


def saved_model_files_problem(path, error_text) -> str | None:
    """What is missing or cut short among the variables of the SavedModel folder `path`,
    which ``tf.saved_model.load`` refused with `error_text`, and the way on; None when its
    words are not of its variables' files. TensorFlow said "Unsuccessful TensorSliceReader
    constructor: Failed to find any matching files for …/variables/variables" for a folder
    copied without its variables/ (saved_model.pb alone), "…variables.data-00000-of-00001; No
    such file or directory" for a missing shard, and "Read less bytes than requested" for a
    data file cut short (a copy or download that stopped). Reads the folder's listing only."""
    folder = os.path.join(path, "variables")
    copy = WHOLE_SAVED_MODEL
    if "variables/variables" in error_text or "TensorSliceReader" in error_text:
        if not os.path.isfile(os.path.join(folder, "variables.index")):
            return (f"its variables are missing: no variables/variables.index in {path} "
                    f"({copy})")
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    shards = sorted(n for n in names if n.startswith("variables.data-"))
    if "variables.data-" in error_text or "No such file" in error_text:
        count = shards[0].rpartition("-of-")[2] if shards else "00001"
        for i in range(int(count) if count.isdigit() else 0):
            name = f"variables.data-{i:05d}-of-{count}"
            if name not in names:
                return f"its variables file variables/{name} is missing ({copy})"
    if "Read less bytes than requested" in error_text:
        return (f"its variables ({', '.join(f'variables/{n}' for n in shards[:3])}) are cut "
                "short: TensorFlow read fewer bytes than variables/variables.index records "
                f"(a copy or download that stopped; {copy})")
    return None
