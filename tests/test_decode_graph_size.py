"""The size of serve_bytes' decode graph: what a reloaded export's first serve_bytes call
optimises (TensorFlow's grappler runs over the signature's graph and every function in its
library, whichever a request reaches), and the graph twin of `sniff.too_short`, written for it.
"""

import numpy as np
import tensorflow as tf

from hubensemble.data.sniff import BMP_MIN_BYTES, SIGNATURES
from hubensemble.data.sniff import too_short as python_too_short


def _decode_graph():
    """The GraphDef of serve_bytes' decode path alone (`check_headers`, `decode_each` of
    `decode_image` resized to 8 px: no members), as bench_decode_graph.py builds it."""
    from hubensemble.export.saved import check_headers, decode_each, decode_image

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def serve(image_bytes):
        def one(data):
            return (tf.image.resize(decode_image(data), [8, 8]),)
        return decode_each(check_headers(image_bytes), one,
                           [tf.TensorSpec([8, 8, 3], tf.float32)])[0]

    return serve.get_concrete_function().graph.as_graph_def()


def test_the_decode_graph_holds_each_refusal_once_and_no_cond_for_a_choice_of_words():
    """serve_bytes' decode graph: 3,697 nodes in 122 functions at 2713221d, where
    `too_short` (200 ops) was inlined six times (the BMP decoder, two identical refusal
    branches of `decode_pixels`, header_check_refusal twice, header_refusal) and each
    refusal's words were chosen by conds (two branch functions each): a reloaded export's
    first serve_bytes call optimised all of it (0.95 s CPU for one tiny member). Each is one
    function now, its words chosen by tf.where: 2,350 nodes in 101 functions; `decode_each`
    and `check_headers` build their refusal's words once for a request of one and of more
    (tf.where, where a cond per size traced the reason twice): 2,303 in 89. Bounds: about
    5 % above. Fails before: too_short inlined; then 101 functions."""
    graph = _decode_graph()
    functions = graph.library.function
    nodes = len(graph.node) + sum(len(f.node_def) for f in functions)
    names = [f.signature.name for f in functions]
    for name in ("too_short", "_format_refusal", "_refuse_format", "_bmp"):
        held = [f.attr["_noinline"].b for f in functions
                if f.signature.name.startswith(f"__inference_{name}_")]
        assert held == [True], (name, held)
    assert nodes < 2_420 and len(functions) < 94, (nodes, len(functions), sorted(names))


def test_too_short_in_the_graph_says_what_sniff_too_short_says():
    """`graph.too_short` (every SIGNATURES row compared at once) gives `sniff.too_short`'s
    words, "" for None, for every prefix of every signature, with each byte changed, a BMP
    shorter than BMP_MIN_BYTES, the empty file and random bytes. Reference: sniff.too_short."""
    from hubensemble.data.graph import too_short

    rng = np.random.default_rng(7)
    cases = [b"", b"BM" + bytes(BMP_MIN_BYTES - 3), b"BM" + bytes(BMP_MIN_BYTES - 2)]
    cases += [rng.integers(0, 256, k, np.uint8).tobytes() for k in (1, 2, 5, 11, 40)]
    for _, parts in SIGNATURES:
        whole = bytearray(max(off + len(magic) for off, magic in parts))
        for off, magic in parts:
            whole[off:off + len(magic)] = magic
        for k in range(1, len(whole) + 1):
            cases.append(bytes(whole[:k]))
            changed = bytearray(whole[:k])
            changed[-1] ^= 0x40
            cases.append(bytes(changed))
    for data in cases:
        got = too_short(tf.constant(data)).numpy().decode()
        assert got == (python_too_short(data) or ""), (data, got)


def test_header_size_reads_any_bytes_without_failing():
    """`graph.header_size` never fails, as its docstring says (decode_each's refusal and the
    Python paths ask it of any file that failed): every prefix of every signature, shorter
    than any header, is [0, 0]; a WebP's VP8X canvas is read. Its readings of a PNG, GIF and
    WebP done for every file (a tf.case's four conds saved) failed on one of 2 bytes ("pos
    12 out of range") and cost a first refusal 0.1 s more (0.42 -> 0.52 s CPU, medians of
    4): reverted. Reference: the sizes written here."""
    from hubensemble.data.graph import header_size

    for _, parts in SIGNATURES:
        whole = bytearray(max(off + len(magic) for off, magic in parts))
        for off, magic in parts:
            whole[off:off + len(magic)] = magic
        for k in range(len(whole) + 1):
            assert header_size(tf.constant(bytes(whole[:k]))).numpy().tolist() == [0, 0]
    canvas = (b"RIFF" + bytes(4) + b"WEBPVP8X" + bytes(8) + (299).to_bytes(3, "little")
              + (199).to_bytes(3, "little"))
    assert header_size(tf.constant(canvas)).numpy().tolist() == [200, 300]


def test_alpha_onto_white_is_one_function_every_decoder_calls():
    """`composite_on_white`'s three conds (six branch functions) were inlined into `_png`,
    `_webp` and `decode_bmp`: 18 functions of serve_bytes' decode graph (2,303 nodes in 89
    at 81fbb1fe). One tf.function, not inlined, holds them now: 2,203 nodes in 78. Fails
    before: no `_on_white` function; 89 functions."""
    graph = _decode_graph()
    functions = graph.library.function
    nodes = len(graph.node) + sum(len(f.node_def) for f in functions)
    held = [f.attr["_noinline"].b for f in functions
            if f.signature.name.startswith("__inference__on_white_")]
    assert held == [True], held
    assert nodes < 2_320 and len(functions) < 82, (nodes, len(functions))


def test_the_shrink_is_one_function_outside_the_decode():
    """`shrink_ops`' cond and resize loop (4 functions, 122 nodes) were inlined into every
    decode, serve_bytes' map function among them, which a reloaded export's first call
    optimises as one: one tf.function, not inlined, holds them now (`shrink._shrink`).
    Fails before: no `_shrink` function."""
    graph = _decode_graph()
    functions = graph.library.function
    held = [f.attr["_noinline"].b for f in functions
            if f.signature.name.startswith("__inference__shrink_")]
    assert held == [True], held


def test_a_bmp_refusal_is_one_function_the_decoder_and_the_reason_call():
    """`bmp_header` (its checks' words: 169 nodes) was inlined into `decode_bmp` and into
    `header_check_refusal`'s BMP branch, each with its own call of `too_short`: 2,205 nodes
    at 6dfc340c. `bmp_refusal` holds them once, `decode_bmp` reads the fields alone: 2,110
    nodes (one function more). Fails before: no `bmp_refusal`; 2,205 nodes."""
    graph = _decode_graph()
    functions = graph.library.function
    nodes = len(graph.node) + sum(len(f.node_def) for f in functions)
    held = [f.attr["_noinline"].b for f in functions
            if f.signature.name.startswith("__inference_bmp_refusal_")]
    assert held == [True], held
    assert nodes < 2_170, (nodes, len(functions))
