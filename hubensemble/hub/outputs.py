"""What a module's ends say of it: the op a signature's output comes from, followed through
Identity ops and nested function calls, so that a module returning a classifier's
probabilities or logits rather than features is said (`SignatureModule` warns of a Softmax,
`ModuleRuntime` of ImageNet logits and a classification handle); and the
value range a Keras model's input layers take (`own_value_range`)."""

from __future__ import annotations

import numpy as np

#: How far a row's sum may be from 1 for the row to read as probabilities: float32 softmax
#: rows of up to ~10^5 classes sum to 1 within ~1e-4 (rounding); features summing to 1
#: within it on every row of a batch are not met by chance.
PROBABILITY_TOLERANCE = 1e-3

#: Ops that pass a value on unchanged.
_PASS = ("Identity", "IdentityN")
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def output_op(fn, key) -> str | None:
    """The type of the op (e.g. "Softmax", "Mean") that computes the ``key`` output of the
    concrete function ``fn`` (a loaded SavedModel's signature; or its one output, for a
    ``__call__`` trace returning a tensor), looking through Identity
    ops and (Stateful)PartitionedCall into the called functions; None when it cannot be
    told (a control-flow op, a graph of another shape: this is only a hint)."""
    try:
        graph_def = fn.graph.as_graph_def()
        library = {f.signature.name: f for f in graph_def.library.function}
        outs = fn.structured_outputs
        tensor = fn.outputs[sorted(outs).index(key) if isinstance(outs, dict) else 0]
        nodes = {n.name: n for n in graph_def.node}
        name, index = tensor.name.split(":")[0], int(tensor.name.split(":")[1])
        inside = False
        for _ in range(1000):
            node = nodes[name]
            if node.op in _PASS:
                source = node.input[index if node.op == "IdentityN" else 0]
            elif node.op in _CALLS:
                body = library[node.attr["f"].func.name]
                nodes, inside = {n.name: n for n in body.node_def}, True
                source = body.ret[body.signature.output_arg[index].name]
            else:
                return node.op
            parts = source.split(":")
            if inside and len(parts) == 3:  # NODE:OUTPUT_ARG:I inside a function body
                name, index = parts[0], int(parts[2])
            elif parts[0] in nodes:
                name, index = parts[0], int(parts[1]) if len(parts) > 1 else 0
            else:
                return None  # a function argument: the value came from outside
        return None
    except (AttributeError, IndexError, KeyError, ValueError, TypeError):
        return None


def own_value_range(kind: str, obj) -> str:
    """The value range a module of `kind` (`hub.locate.ModuleFiles.kind`) takes when the
    catalogue does not say: for a "keras-file" model `obj`, `sources.guess_value_range`
    ("0,255" when a Rescaling layer by 1/255 or 1/127.5 follows its input); else "0,1"."""
    if kind != "keras-file":
        return "0,1"
    from hubensemble.hub.sources import guess_value_range  # Keras' loaders: imported late

    return guess_value_range(obj)


def probe_images(size) -> np.ndarray:
    """float32 [3, height, width, 3] in [0, 1] for `size` (height, width): a black, a white
    and a seeded noise image. Unlike images, so that features that sum to 1 on one by chance
    do not on all three: `catalogue add`'s probe batch and a catalogue HubLayer's first look
    at its module's output (`probability_rows`)."""
    h, w = int(size[0]), int(size[1])
    return np.stack([np.zeros((h, w, 3), np.float32), np.ones((h, w, 3), np.float32),
                     np.random.default_rng(0).random((h, w, 3), np.float32)])


def probability_rows(emb) -> str | None:
    """What `emb` (a [N, D] array of N >= 1 embeddings) shows when every row is a
    probability vector: every value >= 0 and every row's sum (its L1 norm) within
    `PROBABILITY_TOLERANCE` of 1, with D >= 2; else None. The text says what was seen
    ("all 40 rows of 5 values are non-negative and sum to 1 (sums 0.999999 to 1.000001)").

    The L1 norm, not the L2: an L2-normalised embedding (non-negative after a ReLU, or not)
    has unit L2 norm and an L1 norm up to sqrt(D), 1 only for a one-hot row; ReLU features
    are non-negative but sum to 1 on a whole batch only by accident."""
    emb = np.asarray(emb)  # no copy: a cache hit's [N, D] may be large
    if emb.ndim != 2 or emb.shape[0] < 1 or emb.shape[1] < 2:
        return None
    head = emb[:64].sum(axis=1, dtype=np.float64)  # features are told by a few rows
    if not (np.abs(head - 1.0) <= PROBABILITY_TOLERANCE).all() or emb.min() < 0:
        return None
    sums = emb.sum(axis=1, dtype=np.float64)  # NaN or inf anywhere: a sum that is not finite
    if not np.isfinite(sums).all() or np.abs(sums - 1.0).max() > PROBABILITY_TOLERANCE:
        return None
    rows = "the row" if emb.shape[0] == 1 else f"all {emb.shape[0]} rows"
    return (f"{rows} of {emb.shape[1]} values it returned are non-negative and sum to 1 "
            f"(sums {sums.min():.6f} to {sums.max():.6f})")
