"""The size of an export's graph: what tf.saved_model.save writes, tf.saved_model.load turns
back into graphs (a function at a time: most of a small export's reload) and a first call
optimises. Counted in saved_model.pb, not timed."""

import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

from hubensemble.catalogue import ModuleSpec
from hubensemble.export import ExportMember, save_export
from hubensemble.tune import build_classifier

CLASSES = 4


@pytest.fixture(scope="module")
def library(module_factory, tmp_path_factory):
    """The function library of a saved two-member export (FunctionDef protos)."""
    members = []
    for i, size in enumerate((16, 24)):
        spec = ModuleSpec(name=f"g{i}", handle=module_factory(f"graph_{i}", seed=40 + i))
        members.append(ExportMember(build_classifier(spec, CLASSES, name=f"classifier_{i}"),
                                    size, 1.0, {"module": spec.name, "trial": f"t{i}"}))
    out = tmp_path_factory.mktemp("graph") / "export"
    check = np.random.default_rng(0).random((4, 20, 20, 3), dtype=np.float32)
    save_export(members, [str(c) for c in range(CLASSES)], out, check_images=check)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((out / "saved_model.pb").read_bytes())
    return list(saved.meta_graphs[0].graph_def.library.function)


def _holding(library, words: str) -> int:
    """How many functions of `library` hold a string constant with `words`."""
    return sum(any(words.encode() in b"".join(node.attr["value"].tensor.string_val)
                   for node in f.node_def if node.op == "Const") for f in library)


@pytest.mark.parametrize("words", ["hubensemble-input[range]", "hubensemble-input[shape]"])
def test_the_image_inputs_checks_are_saved_once_for_every_entry_point(library, words):
    """serving_default, serve_members and `__call__(training=False)` call one checked resize
    (`saveable_root`'s `resized`): each traced and saved its own, 3 copies of the checks'
    refusals, which the save wrote and the reload check's load read back a function at a time
    (130 -> 119 functions, 3166 -> 2899 nodes for 3 tiny members). `__call__(training=True)`,
    which checks its images without resizing them, calls the same checks (`checked`, which
    `resized` calls): it held a copy of its own (2 functions with the words, now 1)."""
    assert _holding(library, words) == 1
