"""Which call a local SavedModel offers, read from its saved_model.pb without TensorFlow.

The few fields of TensorFlow's protocol buffers that tell how an entry with or without
``signature`` / ``output_key`` calls the module (tensorflow/core/protobuf: saved_model.proto,
meta_graph.proto, saved_object_graph.proto, trackable_object_graph.proto) are read by
field number with protobuf's own decoder (google.protobuf, which TensorFlow requires): each
message is parsed as an empty one, its fields read from `UnknownFieldSet`. TensorFlow's
generated classes would import TensorFlow (some 10 s), and `catalogue validate` is TF-free.
The graph itself is kept as bytes, never parsed.
`signature_reading` says what an entry's fields resolve to (`samemodule.same_module_pairs`);
`defaults_left_out` gives the fields with those that name the module's own default left out
(rank's embedding-cache key: an entry that writes out its default is the same reading).
`input_sizes` gives the image sizes the call an entry uses was traced for (its concrete
functions' input signatures, or its signature's input), which `catalogue validate` checks an
entry's input_size against (`catalogue_sizes`), as the loader does (`hub.callsig`).
TensorFlow's own readers of these messages cost its import (`tensorflow.core.protobuf`: 13 s,
640 MB RSS on the CI machine; tf_keras' protos import TensorFlow too); tensorboard's copies
(`tensorboard.compat.proto`: 0.1 s, 5 MB) have no SavedModel message and are TensorFlow's
dependency, not ours: the field numbers are read here as for the calls.
"""

from __future__ import annotations

import dataclasses
import os

from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

# Field numbers (tensorflow/core/protobuf/*.proto, TF 2.21).
_META_GRAPHS = 2         # SavedModel.meta_graphs (repeated MetaGraphDef)
_SIGNATURE_DEF = 5       # MetaGraphDef.signature_def (map<string, SignatureDef>)
_OBJECT_GRAPH = 7        # MetaGraphDef.object_graph_def (SavedObjectGraph)
_NODES = 1               # SavedObjectGraph.nodes (repeated SavedObject)
_CHILDREN = 1            # SavedObject.children (repeated ObjectReference)
_LOCAL_NAME = 2          # ObjectReference.local_name
_OUTPUTS = 2             # SignatureDef.outputs (map<string, TensorInfo>)
_KEY = 1                 # a map entry's key
_VALUE = 2               # a map entry's value
_LENGTH_DELIMITED = 2    # the wire type of messages, strings and bytes
_VARINT = 0              # the wire type of ints and bools
_NODE_ID = 1             # ObjectReference.node_id
_FUNCTION = 6            # SavedObject.function (SavedFunction)
_BARE_FUNCTION = 8       # SavedObject.bare_concrete_function (BareConcreteFunction)
_FUNCTION_NAMES = 1      # SavedFunction.concrete_functions, BareConcreteFunction's name
_CONCRETE = 2            # SavedObjectGraph.concrete_functions (map<string, SavedConcrete…>)
_INPUT_SIGNATURE = 3     # SavedConcreteFunction.canonicalized_input_signature (Structured…)
_TUPLE = 52              # StructuredValue.tuple_value (TupleValue)
_TENSOR_SPEC = 33        # StructuredValue.tensor_spec_value (TensorSpecProto)
_VALUES = 1              # TupleValue.values
_SPEC_SHAPE = 2          # TensorSpecProto.shape (TensorShapeProto)
_INPUTS = 1              # SignatureDef.inputs (map<string, TensorInfo>)
_INFO_SHAPE = 3          # TensorInfo.tensor_shape (TensorShapeProto)
_DIMS = 2                # TensorShapeProto.dim (repeated Dim)
_UNKNOWN_RANK = 3        # TensorShapeProto.unknown_rank
_DIM_SIZE = 1            # Dim.size (int64; -1 unknown, left out when 0)
#: The signature TF 2 adds for its initializers; `tf.saved_model.load` does not list it.
_INIT_OP = "__saved_model_init_op"


@dataclasses.dataclass(frozen=True)
class SavedModelCalls:
    """What a SavedModel offers to call: ``reusable`` — its root object has ``__call__`` and
    ``variables`` (a reusable SavedModel, called through ``__call__`` when no signature is
    named); ``signatures`` — {signature name: its output keys, sorted}, as
    ``tf.saved_model.load`` lists them (without ``__saved_model_init_op``)."""

    reusable: bool
    signatures: dict


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """(field number, bytes) of each length-delimited field of the message `data`, in order
    (protobuf's own decoding: the bytes parsed as an empty message, every field unknown);
    other wire types are left out. google.protobuf's DecodeError for bytes that are not a
    message."""
    message = empty_pb2.Empty()
    message.ParseFromString(data)
    return [(f.field_number, f.data) for f in UnknownFieldSet(message)
            if f.wire_type == _LENGTH_DELIMITED]


def _all(data, number):
    return [d for n, d in _fields(data) if n == number]


def _first(data, number):
    return next((d for n, d in _fields(data) if n == number), None)


def _map_keys(entries):
    keys = []
    for entry in entries:
        key = _first(entry, _KEY)
        keys.append(key.decode("utf-8") if key is not None else "")
    return keys


def _meta_graph(path) -> bytes | None:
    """The bytes of the one MetaGraphDef of the local SavedModel folder `path`'s
    saved_model.pb (read once: each public reader of a call path reads the file here, and
    only here), None when there is no saved_model.pb, it cannot be read or parsed, or it
    holds other than one meta graph."""
    try:
        with open(os.path.join(os.fspath(path), "saved_model.pb"), "rb") as f:
            graphs = _all(f.read(), _META_GRAPHS)
    except (OSError, DecodeError):
        return None
    return graphs[0] if len(graphs) == 1 else None


def _calls_of(graph) -> SavedModelCalls | None:
    """The SavedModelCalls of the MetaGraphDef bytes `graph` (`_meta_graph`), None when it
    cannot be parsed."""
    if graph is None:
        return None
    try:
        root = set()
        objects = _first(graph, _OBJECT_GRAPH)
        node = _first(objects, _NODES) if objects is not None else None
        if node is not None:
            for child in _all(node, _CHILDREN):
                name = _first(child, _LOCAL_NAME)
                if name is not None:
                    root.add(name.decode("utf-8"))
        signatures = {}
        for entry in _all(graph, _SIGNATURE_DEF):
            key, value = _first(entry, _KEY), _first(entry, _VALUE)
            outputs = _all(value, _OUTPUTS) if value is not None else []
            name = key.decode("utf-8") if key is not None else ""
            if name != _INIT_OP:
                signatures[name] = tuple(sorted(_map_keys(outputs)))
    except (DecodeError, UnicodeDecodeError):
        return None
    return SavedModelCalls({"__call__", "variables"} <= root, signatures)


def read_calls(path) -> SavedModelCalls | None:
    """The SavedModelCalls of the local SavedModel folder `path`, read from its
    saved_model.pb (the file's bytes; no TensorFlow, the graph skipped). None when there is
    no saved_model.pb, it cannot be read or parsed, or it holds other than one meta graph
    (loading the module says why)."""
    return _calls_of(_meta_graph(path))


def has_object_graph(path) -> bool:
    """Whether the local SavedModel folder `path`'s saved_model.pb is TensorFlow 2's: its one
    meta graph holds an object graph (``tf.saved_model.save`` writes it; a TF 1 builder does
    not). False when there is no saved_model.pb or it cannot be read or parsed. Reads the
    file's bytes, the graph skipped (no TensorFlow)."""
    graph = _meta_graph(path)
    try:
        return graph is not None and _first(graph, _OBJECT_GRAPH) is not None
    except DecodeError:
        return False


def default_signature(calls: SavedModelCalls) -> str | None:
    """The signature a SavedModel is called through when the entry names none and it has no
    reusable ``__call__`` (`hub.runtime.SignatureModule`'s rule): serving_default, else
    default, else its only signature; None when it has several and none of those."""
    names = calls.signatures
    return next((n for n in ("serving_default", "default") if n in names),
                next(iter(names)) if len(names) == 1 else None)


def default_output_key(outputs) -> str | None:
    """The output of a signature with output keys `outputs` its embedding is when the entry
    names none: the only one, else "default" (TF1 Hub's feature vector); None otherwise."""
    outputs = list(outputs)
    return outputs[0] if len(outputs) == 1 else ("default" if "default" in outputs else None)


def call_reading(calls: SavedModelCalls, signature=None, output_key=None) -> tuple | None:
    """(signature, output_key) an entry with these fields (None: the module's default) is
    called through: (None, `output_key`) for a reusable SavedModel's ``__call__`` (no
    signature named); else the signature named or `default_signature`, and the output key
    named or `default_output_key`. None when the SavedModel lacks what they name, or has no
    default (loading it says why)."""
    if signature is None and calls.reusable:
        return None, output_key
    name = default_signature(calls) if signature is None else signature
    if name not in calls.signatures:
        return None
    outputs = calls.signatures[name]
    key = default_output_key(outputs) if output_key is None else output_key
    if key not in outputs:
        return None
    return name, key


def signature_reading(path, signature=None, output_key=None) -> tuple | None:
    """`call_reading` of the local SavedModel folder `path` (`read_calls`: milliseconds,
    nothing loaded, no TensorFlow); None when that cannot be told without loading it (no
    saved_model.pb, several meta graphs, an unreadable file, a signature or output it
    lacks)."""
    calls = read_calls(path)
    return None if calls is None else call_reading(calls, signature, output_key)


def defaults_left_out(path, signature=None, output_key=None) -> tuple:
    """(signature, output_key) of an entry of the local SavedModel folder `path` with each
    field that names what the module uses when it is left out made None: ``signature:
    serving_default`` on a module without a reusable ``__call__`` whose default that is, an
    ``output_key`` that is its signature's only output (or "default"). Entries that call the
    module the same way then give the same pair. Fields are returned as given when the
    module cannot be read so (`read_calls`, `call_reading`), or calls ``__call__`` (whose
    dict output has no default key)."""
    calls = read_calls(path) if signature is not None or output_key is not None else None
    if calls is None or call_reading(calls, signature, output_key) is None:
        return signature, output_key
    if signature is not None and not calls.reusable and signature == default_signature(calls):
        signature = None
    name = signature if signature is not None else (
        None if calls.reusable else default_signature(calls))
    if name is not None and output_key == default_output_key(calls.signatures[name]):
        output_key = None
    return signature, output_key


def _varint(data, number) -> int | None:
    """The int64 varint field `number` of the message `data` (two's complement: -1 is
    2**64 - 1 on the wire), None when it is not there."""
    message = empty_pb2.Empty()
    message.ParseFromString(data)
    value = next((f.data for f in UnknownFieldSet(message)
                  if f.field_number == number and f.wire_type == _VARINT), None)
    return None if value is None else (value - 2 ** 64 if value >= 2 ** 63 else value)


def _dims(shape) -> tuple | None:
    """The dimensions (int, None where unknown) of the TensorShapeProto `shape`; None for an
    unknown rank."""
    if shape is None or _varint(shape, _UNKNOWN_RANK):
        return None
    sizes = [_varint(dim, _DIM_SIZE) or 0 for dim in _all(shape, _DIMS)]
    return tuple(None if n < 0 else n for n in sizes)


def reads_channels_first(dims) -> bool:
    """Whether image dimensions `dims` (a tuple of int or None, as `_dims` gives) read as
    channels-first, [B, C, H, W]: rank 4, C 1 or 3, the last side not (PyTorch's layout,
    Keras' data_format="channels_first"). The one copy of the rule: the loader's
    `hub.callsig.channels_first` applies it to a traced TensorShape."""
    return dims is not None and len(dims) == 4 and dims[1] in (1, 3) and dims[-1] not in (1, 3)


def image_size(dims) -> tuple[int, int] | None:
    """(height, width) the image dimensions `dims` (a tuple of int or None, as `_dims` gives)
    fix, [B, H, W, C] or, when it `reads_channels_first`, [B, C, H, W]; None for any size or
    a rank other than 4. The one copy of the rule: `catalogue_sizes` checks an entry's
    input_size by it, the loader's `hub.callsig.fixed_size` applies it to a traced
    TensorShape."""
    if dims is None or len(dims) != 4:
        return None
    h, w = (dims[2], dims[3]) if reads_channels_first(dims) else (dims[1], dims[2])
    return None if h is None or w is None else (int(h), int(w))


def _call_shapes(graph) -> list | None:
    """The image argument's dims (`_dims`) of each traced function of the root's ``__call__``
    in the MetaGraphDef `graph`'s object graph; None when that cannot be told."""
    objects = _first(graph, _OBJECT_GRAPH)
    nodes = _all(objects, _NODES) if objects is not None else []
    call = next((_varint(child, _NODE_ID) or 0 for child in _all(nodes[0], _CHILDREN)
                 if _first(child, _LOCAL_NAME) == b"__call__"), None) if nodes else None
    if call is None or call >= len(nodes):
        return None
    function = _first(nodes[call], _FUNCTION) or _first(nodes[call], _BARE_FUNCTION)
    names = {n.decode("utf-8") for n in _all(function, _FUNCTION_NAMES)} if function else set()
    shapes = []
    for entry in _all(objects, _CONCRETE):
        if (_first(entry, _KEY) or b"").decode("utf-8") not in names:
            continue
        signature = _first(_first(entry, _VALUE) or b"", _INPUT_SIGNATURE)
        args = _first(signature, _TUPLE) if signature is not None else None
        parts = _all(args, _VALUES) if args is not None else []
        positional = _first(parts[0], _TUPLE) if parts else None
        values = _all(positional, _VALUES) if positional is not None else []
        spec = _first(values[0], _TENSOR_SPEC) if values else None
        if spec is None:  # not an image tensor first: the loader says so
            return None
        shapes.append(_dims(_first(spec, _SPEC_SHAPE)))
    return shapes or None


def _signature_shapes(graph, signature) -> list | None:
    """[the dims of the one input of `signature`] (a signature name) in the MetaGraphDef
    `graph`; None when it has no such signature or another count of inputs."""
    for entry in _all(graph, _SIGNATURE_DEF):
        if (_first(entry, _KEY) or b"").decode("utf-8") == signature:
            inputs = _all(_first(entry, _VALUE) or b"", _INPUTS)
            if len(inputs) != 1:
                return None
            info = _first(inputs[0], _VALUE)
            return [_dims(_first(info, _INFO_SHAPE) if info is not None else None)]
    return None


def input_sizes(path, signature=None) -> tuple[tuple[int, int], ...] | None:
    """The (height, width) sizes of images the local SavedModel folder `path` takes through
    the call an entry with this `signature` (None: the module's default, `call_reading`'s
    rule) uses, read from its saved_model.pb (no TensorFlow; milliseconds): the root's
    ``__call__`` when reusable and no signature is named (each traced function's first
    argument), else the signature's one input. Sorted, each once, as the loader's
    `hub.callsig.CallSignature.sizes`: () when it takes any size (a trace of unknown height
    or width, e.g. [None, None, None, 3]); None when that cannot be told without loading it
    (no saved_model.pb, several meta graphs, an unreadable file, no such signature or call,
    a first argument that is not a tensor): the loader then says why."""
    found = traced_input(path, signature)
    return None if found is None else found[0]


def traced_input(path, signature=None) -> tuple[tuple, str | None] | None:
    """(`input_sizes`' sizes, the call they were read from: None for the root's reusable
    ``__call__``, else the signature's name), from one read of saved_model.pb; None when
    `input_sizes` is None. `catalogue_sizes.module_sizes` names the call in its words."""
    graph = _meta_graph(path)
    calls = _calls_of(graph)
    if calls is None or (signature is None and not calls.reusable
                         and default_signature(calls) is None):
        return None
    name = None if signature is None and calls.reusable else (
        signature or default_signature(calls))
    try:
        shapes = _call_shapes(graph) if name is None else _signature_shapes(graph, name)
    except (DecodeError, UnicodeDecodeError, IndexError):
        return None
    if shapes is None:
        return None
    sizes = [image_size(dims) for dims in shapes]
    return (() if None in sizes else tuple(sorted(set(sizes)))), name


def saved_model_pb_problem(path) -> str | None:
    """Why the saved_model.pb of the local SavedModel folder `path` cannot be a SavedModel,
    from its bytes (no TensorFlow): "PATH/saved_model.pb holds nothing (0 bytes)", "… holds
    text (it starts with '<html>…'), not a SavedModel", "… does not parse as a SavedModel
    (N bytes: cut short, or damaged)", "… holds no meta graph"; each with the way on. None
    when it parses with a meta graph, or cannot be read (a missing file is said as such
    elsewhere). `catalogue validate` warns of it; the loader said TensorFlow's "Wire format
    was corrupt", or for an empty file "requires a `tags=` argument … there are 0 MetaGraphs"
    (`hub.savedmodels.load_saved_model` now says these words)."""
    from hubensemble.localfiles import what_bytes_are

    pb = os.path.join(os.fspath(path), "saved_model.pb")
    try:
        with open(pb, "rb") as f:
            data = f.read()
    except OSError:
        return None
    way = ("; copy or download the module whole again (saved_model.pb with its variables/ "
           "folder)")
    if not data:
        return f"{pb} holds nothing (0 bytes){way}"
    try:
        graphs = _all(data, _META_GRAPHS)
    except DecodeError:
        held = what_bytes_are(data[:64])
        if held.startswith("text"):
            return f"{pb} holds {held}, not a SavedModel{way}"
        return (f"{pb} does not parse as a SavedModel ({len(data):,} bytes: cut short, or "
                f"damaged){way}")
    return None if graphs else f"{pb} holds no meta graph{way}"
