"""Resolve, verify, scan and load hub modules; HubLayer (Keras 3); write reusable SavedModels."""

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import keras
import tensorflow as tf
from tensorflow_hub import compressed_module_resolver, resolver as hub_resolver, tf_utils

from hubensemble.errors import ModuleLoadError
from hubensemble.fileio import atomic_write_json, pid_alive, read_json

log = logging.getLogger(__name__)

# Seconds without a byte from the server before a download is abandoned, and the longest a
# whole download may take. Both can be raised for slow links through the environment.
HTTP_TIMEOUT = float(os.environ.get("HUBENSEMBLE_HTTP_TIMEOUT", "60"))
DOWNLOAD_DEADLINE = float(os.environ.get("HUBENSEMBLE_DOWNLOAD_DEADLINE", "3600"))

VALUE_RANGES = ("0,1", "-1,1", "0,255", "imagenet")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# ---------------------------------------------------------------------------------------------
# Safety: which graph ops a module may not run unless trusted.
#
# Loading a SavedModel and calling it runs its graph. A published image model needs none of
# the ops below; each one reaches outside the tensors it is given (files, the network, Python,
# debug dumps). The list is a deny-list because image models legitimately use hundreds of
# ordinary ops; it is complete for the op registry of TF 2.21 (every op that names a path,
# a reader, a writer, a remote endpoint or a Python callback), and documented in
# docs/security.md.
DENIED_OPS = {
    "reads or writes files": {
        "ReadFile", "WriteFile", "MatchingFiles", "FileSystemSetConfiguration", "ImmutableConst",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
        "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
        "MergeV2Checkpoints", "LoadAndRemapMatrix", "GenerateVocabRemapping",
        "TFRecordReader", "TFRecordReaderV2", "WholeFileReader", "WholeFileReaderV2",
        "TextLineReader", "TextLineReaderV2", "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2", "IdentityReader", "IdentityReaderV2", "LMDBReader",
        "ReaderRead", "ReaderReadV2", "ReaderReadUpTo", "ReaderReadUpToV2",
        "ReaderRestoreState", "ReaderRestoreStateV2", "RecordInput",
        "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset",
        "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset",
        "MatchingFilesDataset", "ExperimentalMatchingFilesDataset", "CacheDataset",
        "CacheDatasetV2", "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader",
        "SnapshotChunkDataset", "SnapshotNestedDatasetReader", "ListSnapshotChunksDataset",
        "SaveDataset", "SaveDatasetV2", "LoadDataset", "DistributedSave",
        "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
        "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SummaryWriter",
        "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary",
        "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent",
        "FlushSummaryWriter", "CloseSummaryWriter", "StatsAggregatorSetSummaryWriter",
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
        "DebugNumericSummary", "DebugNumericSummaryV2",
    },
    "runs Python code on the host": {"PyFunc", "PyFuncStateless", "EagerPyFunc"},
    "talks to other hosts": {
        "RemoteCall", "Rpc", "TryRpc", "RpcClient", "RpcServer", "RpcServerStart",
        "RpcServerRegister", "RpcCall", "RpcCheckStatus", "RpcGetValue",
        "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
        "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2",
        "ConfigureDistributedTPU", "ShutdownDistributedTPU",
    },
}
_DENIED = {op: why for why, ops in DENIED_OPS.items() for op in ops}
# The checkpoint ops are how every SavedModel restores its own variables: they are allowed in
# the saver's functions (and in the loader's main graph), nowhere else.
_SAVER_OPS = {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "Restore", "SaveSlices",
              "RestoreSlice"}


@dataclasses.dataclass(frozen=True)
class DeniedOp:
    function: str
    op: str
    reason: str

    def __str__(self):
        return f"{self.op} in {self.function} ({self.reason})"


def scan_saved_model(path):
    """Returns the denied ops reachable from any function the module can run.

    Entry points are every function of the object graph (``__call__``, signatures, resource
    initialisers that run at load time); the saver's own save/restore functions may use the
    checkpoint ops and nothing else on the list.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(pb, "rb") as f:
            sm.ParseFromString(f.read())
    except Exception as e:  # noqa: BLE001 - any parse failure means "not a SavedModel"
        raise ModuleLoadError(f"cannot parse {pb}: {e}", stage="savedmodel") from e
    found = []
    for mg in sm.meta_graphs:
        library = {f.signature.name: f for f in mg.graph_def.library.function}
        og = mg.object_graph_def
        saver_fns, entry_fns = set(), set()
        for node in og.nodes:
            kind = node.WhichOneof("kind")
            if kind == "function":
                entry_fns.update(node.function.concrete_functions)
            elif kind == "bare_concrete_function":
                entry_fns.add(node.bare_concrete_function.concrete_function_name)
            for saveable in node.saveable_objects.values():
                for fid in (saveable.save_function, saveable.restore_function):
                    ref = og.nodes[fid] if 0 <= fid < len(og.nodes) else None
                    if ref is not None and ref.WhichOneof("kind") == "function":
                        saver_fns.update(ref.function.concrete_functions)
        if not og.nodes:
            # A TF1-style model (no object graph): every library function can run.
            entry_fns = set(library)
        saver_only = _reachable(saver_fns, library) - _reachable(entry_fns - saver_fns, library)
        for fname in sorted(_reachable(entry_fns | saver_fns, library)):
            allowed = _SAVER_OPS if fname in saver_only else set()
            for node in library[fname].node_def:
                found.extend(_check_node(fname, node, allowed))
        # The main graph holds the loader's own restore ops; anything else denied is not.
        for node in mg.graph_def.node:
            found.extend(_check_node("<main graph>", node, _SAVER_OPS))
    return found


def _check_node(fname, node, allowed):
    op = node.op
    if op in allowed:
        return []
    if op in _DENIED:
        return [DeniedOp(fname, op, _DENIED[op])]
    if op == "PrintV2":
        stream = node.attr["output_stream"].s.decode("utf-8", "replace")
        if stream.startswith("file://"):
            return [DeniedOp(fname, op, "writes files")]
    if op in ("DecodeProtoV2", "EncodeProto"):
        src = node.attr["descriptor_source"].s.decode("utf-8", "replace")
        if src not in ("", "local://"):
            return [DeniedOp(fname, op, "reads files")]
    return []


def _reachable(roots, library):
    seen, stack = set(), [r for r in roots if r in library]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in library[name].node_def:
            refs = [node.op] if node.op in library else []
            for attr in node.attr.values():
                if attr.HasField("func"):
                    refs.append(attr.func.name)
                refs.extend(f.name for f in attr.list.func)
            stack.extend(r for r in refs if r in library and r not in seen)
    return seen


# ---------------------------------------------------------------------------------------------
# Resolution: handle -> local folder, through tensorflow_hub's resolvers and cache.

_KAGGLE_URL = re.compile(
    r"^https://www\.kaggle\.com/models/([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)/?$")
_KAGGLE_SHORT = re.compile(r"^kaggle:([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)$")


def kaggle_download_url(handle):
    """The archive URL of a Kaggle Models handle (either URL form or ``kaggle:O/M/F/V/N``)."""
    m = _KAGGLE_URL.match(handle) or _KAGGLE_SHORT.match(handle)
    if not m:
        return None
    endpoint = os.environ.get("KAGGLE_API_ENDPOINT", "https://www.kaggle.com").rstrip("/")
    owner, model, framework, variation, version = m.groups()
    return f"{endpoint}/api/v1/models/{owner}/{model}/{framework}/{variation}/{version}/download"


def _cache_dir():
    # tensorflow_hub's own cache, so TFHUB_CACHE_DIR is honoured and modules are shared with
    # hub.load() / hub.KerasLayer users on the same machine.
    return hub_resolver.tfhub_cache_dir(use_temp=True)


def _sidecar(module_dir):
    return module_dir + ".hubensemble.json"


class _HashingReader:
    """A file object that hashes what passes through it and enforces an overall deadline."""

    def __init__(self, fileobj, deadline):
        self._f = fileobj
        self._deadline = deadline
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, n=-1):
        if time.monotonic() > self._deadline:
            raise TimeoutError(f"download took longer than {DOWNLOAD_DEADLINE:.0f} s")
        data = self._f.read(n)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass


class ArchiveResolver(compressed_module_resolver.HttpCompressedFileResolver):
    """tensorflow_hub's compressed-archive resolver with timeouts and archive checksums.

    Handles tfhub.dev and Kaggle handles, ``http(s)://…tar.gz`` and ``gs://…tar.gz``. The
    sha256 of the archive as downloaded is recorded next to the cached folder, so a later
    load of a cached module can still be checked against the catalogue's ``sha256``.
    """

    def is_supported(self, handle):
        if kaggle_download_url(handle):
            return True
        if handle.startswith("gs://"):
            return handle.endswith((".tar", ".tar.gz", ".tgz"))
        return super().is_supported(handle)

    def _call_urlopen(self, request):
        return urllib.request.urlopen(request, timeout=HTTP_TIMEOUT, context=self._context)

    def module_dir(self, handle):
        return compressed_module_resolver._module_dir(handle)

    def __call__(self, handle):
        module_dir = self.module_dir(handle)

        def download(handle, tmp_dir):
            deadline = time.monotonic() + DOWNLOAD_DEADLINE
            if handle.startswith("gs://"):
                source = tf.io.gfile.GFile(handle, "rb")
            else:
                url = kaggle_download_url(handle)
                if url is None:
                    url = self._append_compressed_format_query(handle)
                source = self._call_urlopen(urllib.request.Request(url))
            with contextlib.closing(source):
                reader = _HashingReader(source, deadline)
                expected = getattr(source, "length", None)  # Content-Length, when sent
                try:
                    hub_resolver.DownloadManager(handle).download_and_uncompress(reader,
                                                                                 tmp_dir)
                    reader.drain()  # bytes after the tar's end still belong to the file
                except Exception as e:
                    # A server that closes early shows up as a broken archive; say what it is.
                    if expected is not None and reader.bytes < expected:
                        raise ConnectionError(f"the connection closed after {reader.bytes} "
                                              f"of {expected} bytes") from e
                    raise
            atomic_write_json(_sidecar(module_dir), {
                "handle": handle, "archive_sha256": reader.sha256.hexdigest(),
                "bytes": reader.bytes, "time": time.time()})

        _drop_dead_download_lock(module_dir)
        return hub_resolver.atomic_download(handle, download, module_dir,
                                            self._lock_file_timeout_sec())


def _drop_dead_download_lock(module_dir):
    # tensorflow_hub's lock holds "HOST.PID.UID"; a lock whose download makes no progress is
    # only taken over after 10 minutes. A lock of a process on this host that no longer runs
    # (killed mid-download) is stale now: remove it and that download's temp folder.
    module_dir = tf_utils.absolute_path(module_dir)
    lock = module_dir + ".lock"
    try:
        with open(lock) as f:
            host, pid, uid = f.read().strip().rsplit(".", 2)
    except (OSError, ValueError):
        return  # no lock, or not one of tensorflow_hub's: its own rules apply
    if host != socket.gethostname() or not pid.isdigit() or pid_alive(int(pid)):
        return
    log.info("removing the download lock %s of a process that died", lock)
    shutil.rmtree(f"{module_dir}.{uid}.tmp", ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(lock)


class LocalResolver:
    """Local folders, ``file://`` URLs and ``gs://`` folders (read in place, not cached)."""

    def is_supported(self, handle):
        return True

    def __call__(self, handle):
        path = handle[len("file://"):] if handle.startswith("file://") else handle
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{path} does not exist")
        if not tf.io.gfile.isdir(path):
            raise ModuleLoadError(f"{path} is a file, not a SavedModel folder; a local archive "
                                  "must be unpacked first", handle=handle, stage="savedmodel")
        return path


class ZooResolver:
    """``zoo:PRESET/NAME``: a module of a zoo preset in the user cache, built on first use."""

    def is_supported(self, handle):
        return handle.startswith("zoo:")

    def __call__(self, handle):
        from hubensemble import zoo  # the zoo trains models: import it only when needed

        preset, _, name = handle[len("zoo:"):].partition("/")
        return zoo.module_path(preset, name)


# Tried in order; the first that supports a handle resolves it.
RESOLVERS = [ZooResolver(), ArchiveResolver(), LocalResolver()]


def classify_resolution_error(exc):
    """Which stage a resolution failure belongs to: "network", "archive" or "savedmodel"."""
    if isinstance(exc, ModuleLoadError):
        return exc.stage
    if isinstance(exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                        http.client.HTTPException, tf.errors.UnavailableError)):
        return "network"
    if isinstance(exc, (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError)):
        return "archive"
    if isinstance(exc, OSError) and "valid module" in str(exc):
        return "archive"
    if isinstance(exc, (FileNotFoundError, tf.errors.NotFoundError)):
        return "savedmodel"
    return "network" if isinstance(exc, OSError) else "archive"


def resolve(handle, *, name=None, sha256=None):
    """Resolves a handle to a local SavedModel folder, verifying ``sha256`` when given.

    For a downloaded archive the checksum is that of the archive; for a local folder it is
    that of its ``saved_model.pb``. A mismatch raises ModuleLoadError(stage="checksum").
    """
    impl = next(r for r in RESOLVERS if r.is_supported(handle))
    if sha256 and isinstance(impl, ArchiveResolver):
        _drop_unverifiable_cache(impl.module_dir(handle))
    try:
        path = impl(handle)
    except ModuleLoadError as e:
        raise ModuleLoadError(str(e.args[0]) if e.args else "", module=name, handle=handle,
                              stage=e.stage) from e
    except Exception as e:  # noqa: BLE001 - reclassified with the handle named
        stage = classify_resolution_error(e)
        hint = {"network": "check the URL and your connection, or raise "
                           "HUBENSEMBLE_HTTP_TIMEOUT",
                "archive": "the download is not a valid SavedModel tarball",
                "savedmodel": "check the path"}.get(stage, "")
        raise ModuleLoadError(f"{type(e).__name__}: {e} ({hint})", module=name,
                              handle=handle, stage=stage) from e
    if sha256:
        _verify_checksum(impl, handle, path, sha256.lower(), name)
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        raise ModuleLoadError(f"no saved_model.pb in {path}", module=name, handle=handle,
                              stage="savedmodel")
    return path


def _drop_unverifiable_cache(module_dir):
    # A module cached by plain tensorflow_hub has no record of its archive's checksum; fetch
    # it again through our resolver rather than trust it unverified.
    if os.path.isdir(module_dir) and not os.path.exists(_sidecar(module_dir)):
        log.info("re-downloading %s to verify its sha256", module_dir)
        shutil.rmtree(module_dir, ignore_errors=True)


def _verify_checksum(impl, handle, path, expected, name):
    if isinstance(impl, ArchiveResolver):
        try:
            actual = read_json(_sidecar(path))["archive_sha256"]
        except (OSError, KeyError, ValueError):
            actual = None
        what = "archive"
    else:
        actual = file_sha256(os.path.join(path, "saved_model.pb"))
        what = "saved_model.pb"
    if actual != expected:
        if isinstance(impl, ArchiveResolver):
            # Never leave a module that failed verification where the next load would find it.
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(_sidecar(path))
        raise ModuleLoadError(
            f"sha256 of the {what} is {actual}, the catalogue expects {expected}; refusing to "
            "load it. If the module was legitimately updated, update the catalogue's sha256",
            module=name, handle=handle, stage="checksum")


def file_sha256(path):
    h = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def module_fingerprint(path):
    """A content key of a SavedModel folder: its graph, its variables' index (with CRCs) and
    the sizes of the variables' data files."""
    h = hashlib.sha256()
    for rel in ("saved_model.pb", "variables/variables.index"):
        p = os.path.join(path, rel)
        if tf.io.gfile.exists(p):
            h.update(rel.encode())
            h.update(file_sha256(p).encode())
    # A truncated or missing data shard leaves the index intact: without the sizes such a
    # module would share the key of its intact self and be "ranked" from the cache.
    variables = os.path.join(path, "variables")
    if tf.io.gfile.isdir(variables):
        for name in sorted(tf.io.gfile.listdir(variables)):
            if name.startswith("variables.data-"):
                size = tf.io.gfile.stat(os.path.join(variables, name)).length
                h.update(f"{name}={size}".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Loading.

@dataclasses.dataclass
class LoadedModule:
    obj: object          # what tf.saved_model.load returned
    path: str
    handle: str
    fingerprint: str
    output_dim: int | None


def load_module(handle, *, name=None, sha256=None, trust=False):
    """Resolves, verifies, scans and loads a reusable SavedModel.

    Load inside ``strategy.scope()`` when the variables must be distributed.
    """
    path = resolve(handle, name=name, sha256=sha256)
    if not trust:
        denied = scan_saved_model(path)
        if denied:
            listed = "; ".join(str(d) for d in denied[:5])
            more = f" (+{len(denied) - 5} more)" if len(denied) > 5 else ""
            raise ModuleLoadError(
                f"refusing to load: the module can run ops that reach outside its inputs: "
                f"{listed}{more}. If you trust its publisher, set `trust: true` on its "
                "catalogue entry (or pass trust=True)", module=name, handle=handle,
                stage="unsafe")
    try:
        obj = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - TF raises many types for a broken SavedModel
        raise ModuleLoadError(f"tf.saved_model.load failed: {type(e).__name__}: "
                              f"{_first_line(e)}", module=name, handle=handle,
                              stage="savedmodel") from e
    if not callable(obj) or not hasattr(obj, "variables"):
        raise ModuleLoadError("not a reusable SavedModel: it needs __call__ and variables "
                              "(https://www.tensorflow.org/hub/reusable_saved_models)",
                              module=name, handle=handle, stage="savedmodel")
    return LoadedModule(obj, path, handle, module_fingerprint(path), _output_dim(obj))


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _output_dim(obj, output_key=None):
    fns = getattr(getattr(obj, "__call__", None), "concrete_functions", None) or []
    for fn in fns:
        out = fn.structured_outputs
        if isinstance(out, dict):
            if output_key is None or output_key not in out:
                continue
            out = out[output_key]
        shape = getattr(out, "shape", None)
        if shape is not None and shape.rank == 2 and shape[-1] is not None:
            return int(shape[-1])
    return None


def to_value_range(images, value_range):
    """Maps float images in [0, 1] to the value range a module expects."""
    if value_range == "0,1":
        return images
    if value_range == "-1,1":
        return images * 2.0 - 1.0
    if value_range == "0,255":
        return images * 255.0
    if value_range == "imagenet":
        return (images - tf.constant(_IMAGENET_MEAN)) / tf.constant(_IMAGENET_STD)
    raise ValueError(f"unknown value_range {value_range!r}; use one of {VALUE_RANGES}")


@keras.saving.register_keras_serializable(package="hubensemble")
class HubLayer(keras.layers.Layer):
    """A reusable SavedModel (TF Hub, Kaggle, local) as a fine-tunable Keras 3 layer.

    Takes float images in [0, 1] of any size, resizes them to the module's ``input_size``
    when it has one, maps them to its ``value_range`` and returns its output. The layer owns
    the module's own variables (no copies), so fine-tuning updates the module; the module's
    regularisation losses are added while training. Serialises by handle: ``from_config``
    loads the module again and Keras restores the fine-tuned weights on top.

    Example::

        layer = HubLayer("https://tfhub.dev/google/bit/m-r50x1/1", trainable=True)
        model = keras.Sequential([keras.Input((None, None, 3)), layer,
                                  keras.layers.Dense(10)])
    """

    def __init__(self, handle, *, trainable=False, input_size=None, value_range="0,1",
                 sha256=None, trust=False, output_key=None, module_name=None, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        if value_range not in VALUE_RANGES:
            raise ValueError(f"unknown value_range {value_range!r}; use one of {VALUE_RANGES}")
        self.handle = handle
        self.input_size = tuple(int(s) for s in input_size) if input_size else None
        self.value_range = value_range
        self.sha256 = sha256
        self.trust = bool(trust)
        self.output_key = output_key
        self.module_name = module_name
        loaded = load_module(handle, name=module_name, sha256=sha256, trust=trust)
        self.module_path = loaded.path
        self.fingerprint = loaded.fingerprint
        self._module = loaded.obj
        self.output_dim = _output_dim(loaded.obj, output_key)
        trainable_ids = {id(v) for v in getattr(loaded.obj, "trainable_variables", [])}
        self._module_variables = []
        for i, v in enumerate(loaded.obj.variables):
            # Wrapping a tf.Variable keeps the very same variable (Keras' TF backend stores it
            # as-is), so the module's functions see every update the optimizer makes.
            kv = keras.Variable(initializer=v, trainable=id(v) in trainable_ids, dtype=v.dtype,
                                shape=v.shape, name=f"module_{i}_" + _clean(v.name))
            self._track_variable(kv)
            self._module_variables.append(kv)
        self._reg_losses = list(getattr(loaded.obj, "regularization_losses", []))
        self.built = True

    def call(self, images, training=None):
        x = tf.convert_to_tensor(images, tf.float32)
        if self.input_size is not None:
            if tuple(x.shape[1:3]) != self.input_size:
                x = tf.image.resize(x, self.input_size)
        x = to_value_range(x, self.value_range)
        # A frozen layer runs the module in inference mode (as hub.KerasLayer does): batch
        # statistics and dropout belong to fine-tuning, not to feature extraction.
        train = bool(training) and self.trainable
        out = self._module(x, training=train)
        if isinstance(out, dict):
            if self.output_key is None or self.output_key not in out:
                raise ValueError(f"module {self.handle} returns a dict with keys "
                                 f"{sorted(out)}; set output_key to the embedding's key")
            out = out[self.output_key]
        if out.shape.rank is not None and out.shape.rank != 2:
            raise ValueError(f"module {self.handle} returns a rank-{out.shape.rank} output "
                             f"{out.shape}; hubensemble needs [batch, features] embeddings")
        if train:
            for fn in self._reg_losses:
                self.add_loss(fn())
        return out

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(handle=self.handle, input_size=self.input_size,
                      value_range=self.value_range, sha256=self.sha256, trust=self.trust,
                      output_key=self.output_key, module_name=self.module_name)
        return config


def _clean(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0])[-60:]


def hub_layer_from_spec(spec, *, trainable=False, name=None):
    """A HubLayer for a catalogue ModuleSpec."""
    return HubLayer(spec.handle, trainable=trainable, input_size=spec.input_size,
                    value_range=spec.value_range, sha256=spec.sha256, trust=spec.trust,
                    output_key=spec.output_key, module_name=spec.name, name=name)


# ---------------------------------------------------------------------------------------------
# Writing reusable SavedModels.

def write_hub_module(model, path, *, input_size=None, metadata=None):
    """Writes a Keras 3 model as a TF Hub reusable SavedModel and returns its folder.

    The module has ``__call__(images, training)`` traced for training True and False,
    ``variables``, ``trainable_variables`` and ``regularization_losses`` (one function per
    regularised weight of the model). ``input_size`` fixes the spatial size of the input
    signature; by default any size is accepted. ``metadata`` (a JSON-able dict) is stored as
    ``assets/hubensemble_module.json``. The folder is written next to ``path`` and renamed
    into place, so an interrupted write never leaves a half module.
    """
    h, w = (input_size or (None, None))
    spec = tf.TensorSpec([None, h, w, 3], tf.float32, name="images")

    def call(images, training=False):
        return model(images, training=training)

    fn = tf.function(call)
    fn.get_concrete_function(spec, True)
    fn.get_concrete_function(spec, False)
    root = tf.train.Checkpoint()
    root.__call__ = fn
    root.variables = [_tf_var(v) for v in model.variables]
    root.trainable_variables = [_tf_var(v) for v in model.trainable_variables]
    root.regularization_losses = _regularization_fns(model)
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(path)}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(root, tmp, signatures={})
    if metadata is not None:
        os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
        with open(os.path.join(tmp, "assets", "hubensemble_module.json"), "w") as f:
            json.dump(metadata, f, indent=2)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def _tf_var(v):
    return v.value if isinstance(v, keras.Variable) else v


def _regularization_fns(model):
    fns = []
    for layer in model._flatten_layers(include_self=False):
        for attr in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(layer, attr, None)
            var = getattr(layer, attr.replace("_regularizer", ""), None)
            if reg is not None and var is not None:
                fns.append(_regularization_fn(reg, _tf_var(var)))
    return fns


def _regularization_fn(reg, var):
    return tf.function(lambda: reg(var), input_signature=[])
