"""Counting a model's cost on TensorFlow: multiply-accumulates from its traced graph, parameters,
latency (median of repeats).

FLOPs are counted, not estimated from the architecture: the model is traced at batch 1 for
its serving resolution, its variables are frozen into constants and its function calls
inlined (TensorFlow's own `convert_variables_to_constants_v2`, what the TFLite converter
uses), the graph is imported into a fresh `tf.Graph` so every tensor gets its static shape,
and each convolution and matrix product contributes its multiply-accumulates (`op_macs`).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Callable

import numpy as np
from hubensemble._tf import tensorflow as tf

from hubensemble.errors import HubensembleError

#: Ops whose multiply-accumulates are counted (element-wise ops are not: records.DEFINITION).
MAC_OPS = ("Conv2D", "DepthwiseConv2dNative", "Conv3D", "Conv2DBackpropInput",
           "Conv3DBackpropInputV2", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
           "Einsum")
#: Ops that hide a sub-graph; one left after inlining makes the count incomplete.
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile", "If",
             "StatelessIf", "Case", "StatelessCase")


class CostError(HubensembleError):
    """A model whose cost cannot be counted (a shape unknown at batch 1, a sub-graph that
    could not be inlined)."""


def _dims(shape, op) -> list[int]:
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        raise CostError(f"{op.type} op {op.name!r} has a shape unknown at batch 1 ({shape}); "
                        "its multiply-accumulates cannot be counted")
    return [int(d) for d in dims]


def op_macs(op) -> int:
    """Multiply-accumulates of one op of an imported graph (0 for ops not in MAC_OPS).

    Conv2D / Conv3D: output elements x kernel window x kernel input channels (the kernel's
    input dimension, so grouped convolutions count per group); DepthwiseConv2dNative: output
    elements x kernel window; transposed convolutions: input elements x kernel window x
    output channels; MatMul / BatchMatMul: output elements x the contracted dimension;
    Einsum: the product of the sizes of every index of its operands (exact for one- and
    two-operand contractions). Raises CostError when a shape needed is not fully known.
    """
    kind = op.type
    if kind not in MAC_OPS:
        return 0
    out = _dims(op.outputs[0].shape, op)
    if kind in ("Conv2D", "Conv3D"):
        kernel = _dims(op.inputs[1].shape, op)
        return int(np.prod(out, dtype=np.int64) * np.prod(kernel[:-1], dtype=np.int64))
    if kind == "DepthwiseConv2dNative":
        kernel = _dims(op.inputs[1].shape, op)
        return int(np.prod(out, dtype=np.int64) * kernel[0] * kernel[1])
    if kind in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):
        kernel = _dims(op.inputs[1].shape, op)  # [..., out channels, in channels]
        grads = _dims(op.inputs[2].shape, op)
        return int(np.prod(grads, dtype=np.int64) * np.prod(kernel[:-1], dtype=np.int64))
    if kind == "MatMul":
        a = _dims(op.inputs[0].shape, op)
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        return int(np.prod(out, dtype=np.int64) * inner)
    if kind.startswith("BatchMatMul"):
        a = _dims(op.inputs[0].shape, op)
        inner = a[-2] if op.get_attr("adj_x") else a[-1]
        return int(np.prod(out, dtype=np.int64) * inner)
    # Einsum
    equation = op.get_attr("equation")
    equation = equation.decode() if isinstance(equation, bytes) else equation
    lhs = equation.split("->")[0].split(",")
    sizes = {}
    for spec, tensor in zip(lhs, op.inputs):
        dims = _dims(tensor.shape, op)
        if "." in spec:
            raise CostError(f"Einsum op {op.name!r} uses an ellipsis ({equation}); its "
                            "multiply-accumulates cannot be counted")
        sizes.update(zip(spec, dims))
    return int(np.prod(list(sizes.values()), dtype=np.int64))


def frozen_graph(concrete_function) -> tf.Graph:
    """The concrete function's graph with its variables as constants and its function calls
    inlined, imported into a new tf.Graph (static shapes inferred). Raises CostError, naming
    the internal and the TensorFlow release, on a release without TensorFlow's freezing
    (moved or renamed): the module is then not costed, as any module that cannot be counted
    (the cost stage warns, records why and goes on), where an ImportError ended the stage."""
    try:  # TensorFlow's freezing (what tf.lite's converter does); not in the public tf namespace
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2)
    except ImportError:
        raise CostError(
            f"TensorFlow {tf.__version__} has no convert_variables_to_constants_v2 in "
            "tensorflow.python.framework.convert_to_constants (TensorFlow's own freezing, "
            "not public API, which hubensemble counts multiply-accumulates with), so they "
            "cannot be counted with it; install a release hubensemble was tested with: pip "
            "install 'tensorflow>=2.20,<2.22'") from None
    frozen = convert_variables_to_constants_v2(concrete_function, lower_control_flow=True,
                                               aggressive_inlining=True)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
    return graph


def count_macs(concrete_function) -> tuple[int, dict[str, int]]:
    """(total multiply-accumulates, {op type: its share}) of one call of `concrete_function`
    (traced with fully known input shapes, e.g. batch 1). Raises CostError when a call
    could not be inlined, a shape is unknown or TensorFlow's freezing is missing
    (`frozen_graph`)."""
    graph = frozen_graph(concrete_function)
    ops = graph.get_operations()
    hidden = Counter(op.type for op in ops if op.type in _CALL_OPS)
    if hidden:
        raise CostError("the traced graph still holds sub-graphs after inlining ("
                        + ", ".join(f"{n} {t}" for t, n in sorted(hidden.items()))
                        + "); its multiply-accumulates cannot be counted")
    by_op = Counter()
    for op in ops:
        macs = op_macs(op)
        if macs:
            by_op[op.type] += macs
    return int(sum(by_op.values())), dict(by_op)


def image_function(model: Callable, size: int, batch: int = 1):
    """The concrete function of ``model(images, training=False)`` on float32 images
    [batch, size, size, 3]. Not autograph converted (autograph=False): the lambda has no
    control flow and a Keras model's call is never converted (autograph leaves Keras code
    as it is), so conversion built the same graph at a cost; a Python `if` on a tensor in a
    model that is no Keras model now fails its trace instead of being converted."""
    fn = tf.function(lambda images: model(images, training=False), autograph=False)
    return fn.get_concrete_function(tf.TensorSpec([int(batch), int(size), int(size), 3],
                                                  tf.float32, name="images"))


def count_params(model) -> int:
    """Number of weights (scalars) of a Keras model or layer, each variable counted once: the
    Keras weights of it and of every layer in it (`hub.sublayers.layers_within`: also those
    in a tf.Module a user's layer holds, which Keras' own `weights` leave out) and, for each
    `hub.HubLayer` in it, the variables its module's call reads that Keras does not track (a
    SavedModel signature's captured variables, when the SavedModel exposes no `variables`:
    `hub.layer.held_variables`)."""
    from hubensemble._tf import keras

    from hubensemble.hub.layer import HubLayer, held_variables
    from hubensemble.hub.sublayers import layers_within

    seen, total = set(), 0
    layers = layers_within(model) or [model]
    variables = [v.value if isinstance(v, keras.Variable) else v
                 for layer in layers for v in layer.weights]
    variables += [v for layer in layers if isinstance(layer, HubLayer)
                  for v in held_variables(layer.runtime)]
    for v in variables:
        if id(v) in seen:
            continue
        seen.add(id(v))
        total += int(np.prod(v.shape, dtype=np.int64))
    return total


def time_calls(call: Callable[[], object], *, min_repeats: int = 5, max_repeats: int = 50,
               max_seconds: float = 2.0, warmup: int = 2) -> tuple[float, int]:
    """(median wall time in ms, repeats) of `call()` (which must finish its work before it
    returns, e.g. by reading its result): `warmup` untimed calls, then at least
    `min_repeats` and at most `max_repeats` timed ones, stopping once `max_seconds` have
    passed. The median resists the outliers of a shared machine."""
    for _ in range(max(0, int(warmup))):
        call()
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats
                                        or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times), len(times)


def measure_latency(model: Callable, size: int, batches=(1, 64), *, seed: int = 0,
                    max_seconds: float = 2.0) -> dict[str, float]:
    """{str(batch): median ms per call} of ``model(images, training=False)`` compiled as a
    tf.function, on uniform random float32 images [batch, size, size, 3] in [0, 1]
    (`time_calls`; machine-dependent)."""
    out = {}
    rng = np.random.default_rng(seed)
    for batch in batches:
        fn = image_function(model, size, batch)
        x = tf.constant(rng.random((int(batch), int(size), int(size), 3), dtype=np.float32))
        ms, _ = time_calls(lambda: tf.nest.map_structure(np.asarray, fn(x)),
                           max_seconds=max_seconds)
        out[str(int(batch))] = ms
    return out


def time_batches(call: Callable, images, batches=(1, 64), *,
                 max_seconds: float = 2.0) -> dict[str, float]:
    """{str(batch): median ms per call} of `call(x)` with x the first `batch` of `images`
    (float32 [N, H, W, 3], tiled when N < batch), as `time_calls` times it. For whole
    models (an export, a TFLite interpreter) whose inputs are fixed.

    x is made once per batch size, before the timing, and is of the kind `images` is: for a
    tensor, a tensor (so a SavedModel is timed on its input as `measure_latency` times a
    member, without converting a NumPy batch on every call: TensorFlow copies a NumPy array
    into each tensor it makes of it, and a batch of 64 phone photos held at 1365 x 1024 is
    1.07 GB float32) whose memory is a 64-byte aligned NumPy array's
    (`corruptions.shared_tensor`), so it is given back when the timing ends (a tf.gather's
    stayed resident in TensorFlow's CPU allocator through every stage after the export); a
    C-contiguous NumPy array otherwise. Either holds exactly `batch` images, copied in one at a
    time (np.take(out=...) buffered a second whole batch). At most one batch is held at a
    time."""
    from hubensemble.corruptions import aligned_empty, shared_tensor

    tensor = isinstance(images, (tf.Tensor, tf.Variable))
    images = np.asarray(images, np.float32)  # a CPU tensor's own memory (no copy)
    out = {}
    for batch in batches:
        rows = np.arange(int(batch)) % int(images.shape[0])  # the first `batch`, tiled
        x = aligned_empty((len(rows),) + images.shape[1:])
        for i, row in enumerate(rows):  # np.take(out=x) buffers a whole second copy of x
            x[i] = images[row]
        x = shared_tensor(x) if tensor else x
        out[str(int(batch))], _ = time_calls(lambda: call(x), max_seconds=max_seconds)
        x = None  # freed before the next batch size's is made
    return out
