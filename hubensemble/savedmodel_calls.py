"""Which call a local SavedModel offers, read from its saved_model.pb without TensorFlow.

The few fields of TensorFlow's protocol buffers that tell how an entry with or without
``signature`` / ``output_key`` calls the module (tensorflow/core/protobuf: saved_model.proto,
meta_graph.proto, saved_object_graph.proto, trackable_object_graph.proto) are read by
field number with protobuf's own decoder (google.protobuf, which TensorFlow requires): each
message is parsed as an empty one, its fields read from `UnknownFieldSet`. TensorFlow's
generated classes would import TensorFlow (some 10 s), and `catalogue validate` is TF-free.
The graph itself is kept as bytes, never parsed.
`signature_reading` says what an entry's fields resolve to (`handles.same_module_pairs`);
`defaults_left_out` gives the fields with those that name the module's own default left out
(rank's embedding-cache key: an entry that writes out its default is the same reading).
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


def read_calls(path) -> SavedModelCalls | None:
    """The SavedModelCalls of the local SavedModel folder `path`, read from its
    saved_model.pb (the file's bytes; no TensorFlow, the graph skipped). None when there is
    no saved_model.pb, it cannot be read or parsed, or it holds other than one meta graph
    (loading the module says why)."""
    pb = os.path.join(os.fspath(path), "saved_model.pb")
    try:
        with open(pb, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        graphs = _all(data, _META_GRAPHS)
        if len(graphs) != 1:
            return None
        graph = graphs[0]
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


def has_object_graph(path) -> bool:
    """Whether the local SavedModel folder `path`'s saved_model.pb is TensorFlow 2's: its one
    meta graph holds an object graph (``tf.saved_model.save`` writes it; a TF 1 builder does
    not). False when there is no saved_model.pb or it cannot be read or parsed. Reads the
    file's bytes, the graph skipped (no TensorFlow)."""
    try:
        with open(os.path.join(os.fspath(path), "saved_model.pb"), "rb") as f:
            graphs = _all(f.read(), _META_GRAPHS)
        return len(graphs) == 1 and _first(graphs[0], _OBJECT_GRAPH) is not None
    except (OSError, DecodeError):
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
