"""The signature names a SavedModel's saved_model.pb declares, read from its bytes without
TensorFlow, so `evaluate` refuses a --model without the signature it calls before TensorFlow
loads (10.8 s) and before any data is read (a new user's check: it printed the task's line,
loaded TensorFlow, then said "… has no serving_default signature").

The protobuf wire format (https://protobuf.dev/programming-guides/encoding/) is walked along
the path SavedModel.meta_graphs (field 2) -> MetaGraphDef.signature_def (field 5, a map: its
entries' field 1 is the key), as tensorflow/core/protobuf/saved_model.proto and
meta_graph.proto number them. `google.protobuf` has no public schemaless reader, and the
generated classes live in the tensorflow package, whose import is what this avoids.
"""
from __future__ import annotations

import os

#: Keys TensorFlow keeps in signature_def that `tf.saved_model.load(...).signatures` hides.
_HIDDEN = ("__saved_model_init_op", "__saved_model_train_op")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes, start: int = 0, end: int | None = None):
    """(field number, wire type, value) of each field of the message buf[start:end]: value is
    the int of a varint or fixed field, the (start, end) of a length-delimited one."""
    i, end = start, len(buf) if end is None else end
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = None, i + 8
        elif wire == 5:
            value, i = None, i + 4
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = (i, i + size), i + size
        else:  # groups (3, 4) are in no SavedModel message
            raise ValueError(f"wire type {wire}")
        if i > end:
            raise ValueError("field past the message's end")
        yield number, wire, value


def signature_names(model_dir) -> list[str] | None:
    """The signature names (str, sorted, as `tf.saved_model.load(MODEL_DIR).signatures` lists
    them: TensorFlow's own __saved_model_init_op hidden) of the first meta graph of
    MODEL_DIR/saved_model.pb; None when the file cannot be read or is not the protobuf this
    expects (TensorFlow, loading it, then says what is wrong). Reads the file once; no
    TensorFlow."""
    try:
        with open(os.path.join(os.fspath(model_dir), "saved_model.pb"), "rb") as f:
            buf = f.read()
        graphs = [v for n, w, v in _fields(buf) if n == 2 and w == 2]
        if not graphs:
            return None
        names = set()
        for n, w, v in _fields(buf, *graphs[0]):
            if n == 5 and w == 2:  # one map entry: key (1) and SignatureDef (2)
                for kn, kw, kv in _fields(buf, *v):
                    if kn == 1 and kw == 2:
                        names.add(buf[kv[0]:kv[1]].decode("utf-8"))
        return sorted(names - set(_HIDDEN))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
