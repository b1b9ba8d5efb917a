"""The safety check: which graph ops a module may not run unless trusted (the one copy of it)."""

import dataclasses
import os

import tensorflow as tf

from hubensemble.errors import ModuleLoadError, checks_keywords, first_line
from hubensemble.saidwords import ON_ENTRY, SET, Say
from hubensemble.fileio import tf_path
from hubensemble.savedmodel_calls import saved_model_pb_problem

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
    """One denied op found by `scan_saved_model`: the graph function it is in, the op type and
    why it is denied (a key of DENIED_OPS)."""

    function: str
    op: str
    reason: str

    def __str__(self):
        return f"{self.op} in {self.function} ({self.reason})"


def scan_saved_model(path):
    """The denied ops (a list of DeniedOp, empty for a clean module) that the SavedModel in
    folder ``path`` can run, found without loading it (only ``saved_model.pb`` is parsed).

    Entry points are every function of the object graph (``__call__``, signatures, resource
    initialisers that run at load time), followed through nested calls (``PartitionedCall``,
    ``While``/``If`` bodies, function-valued attributes); the saver's own save/restore
    functions may use the checkpoint ops and nothing else on the list. A TF1-style model
    without an object graph has every library function scanned. Raises
    ModuleLoadError(stage="savedmodel") when ``saved_model.pb`` cannot be read or parsed,
    saying what its bytes are and the way on (`savedmodel_calls.saved_model_pb_problem`).
    Reference: docs/security.md.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(tf_path(pb), "rb") as f:
            sm.ParseFromString(f.read())
    except Exception as e:  # noqa: BLE001 - any parse failure means "not a SavedModel"
        # What the bytes are (empty, a saved web page, cut short) and the way on, in the words
        # `catalogue validate` and the loader say (savedmodel_calls owns that check).
        why = saved_model_pb_problem(path) or f"cannot parse {pb}: {first_line(e)}"
        raise ModuleLoadError(why, stage="savedmodel") from e
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


@checks_keywords
def check_safe(path, *, trust=False, name=None, handle=None):
    """Refuses a module that can reach outside its inputs, unless ``trust`` is true.

    The one safety verdict of hubensemble: rank (also when its embeddings come from the
    cache), HubLayer, export and `load_module` all call it before a module is loaded, so a
    module refused here is refused on every path. Raises ModuleLoadError(stage="unsafe")
    listing the first five denied ops, naming ``name`` / ``handle``, with the fix
    (``trust: true`` on the catalogue entry); ModuleLoadError(stage="savedmodel"), naming
    them too, for a ``saved_model.pb`` that cannot be parsed.
    """
    if trust:
        return
    try:
        denied = scan_saved_model(path)
    except ModuleLoadError as e:  # an unreadable graph: named as every module error is
        raise e.said_as(e.form, module=name, handle=handle) from e
    if denied:
        listed = "; ".join(str(d) for d in denied[:5])
        more = f" (+{len(denied) - 5} more)" if len(denied) > 5 else ""
        raise ModuleLoadError(
            f"refusing to load: the module can run ops that reach outside its inputs: "
            f"{listed}{more}", way=(". If you trust its publisher, ", SET,
                                    Say("trust", True, yaml="`trust: true`"), ON_ENTRY),
            module=name, handle=handle, stage="unsafe")
