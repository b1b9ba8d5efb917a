"""Fakes shared by evaluate's tests: an export folder that is never loaded, and the check that
the command line says a refusal before TensorFlow's import in the words of the refusal after
the load (tests/test_evaluate.py, tests/test_evaluate_before_tf.py built and checked both
alike, each in its own copy)."""
import json


def fake_saved_model_pb() -> bytes:
    """The bytes of a saved_model.pb whose one meta graph declares a serving_default
    signature of no inputs and outputs, and no object graph (so no variables/ is looked
    for): it passes the checks of an export's files (`formats.check_saved_model_folder`,
    `evaluationtask.check_serving_signature`), which refuse an empty one as damaged, and it
    never loads. Field numbers of tensorflow/core/protobuf/saved_model.proto (meta_graphs 2)
    and meta_graph.proto (signature_def 5, a map entry: key 1, value 2)."""
    entry = b"\x0a\x0fserving_default\x12\x00"
    meta = b"\x2a" + bytes([len(entry)]) + entry
    return b"\x12" + bytes([len(meta)]) + meta


def fake_export(path, names=("a", "b", "c"), *, metadata=True):
    """`path` (pathlib.Path, made with its parents) as an export folder whose saved_model.pb
    (`fake_saved_model_pb`) is never loaded, as a refusal comes first; with `metadata`, its
    assets/hubensemble.json names the classes `names` (str each) and their count. Returns
    `path`."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "saved_model.pb").write_bytes(fake_saved_model_pb())
    if metadata:
        (path / "assets").mkdir()
        (path / "assets" / "hubensemble.json").write_text(json.dumps({
            "format": "hubensemble-export", "class_names": list(names),
            "num_classes": len(names)}))
    return path


def refused_before_tensorflow(*cases):
    """Runs each of `cases`, (argv of `hubensemble`: a list of str or paths, the words of its
    refusal: a str or an exception), one after another in one new process
    (`test_cli.each_in_one_process`), and asserts that each exits with 2 before TensorFlow
    is imported, its stderr ending in "error: WORDS" and a line break: the refusal the
    command says from files alone is the one said after the load (the reference). Returns
    [(exit code, stdout, stderr, whether TensorFlow was imported)], one per case."""
    from test_cli import each_in_one_process

    found = each_in_one_process(*(argv for argv, _ in cases))
    for (code, _, err, tensorflow), (_, words) in zip(found, cases):
        assert (code, tensorflow) == (2, False), err
        assert err.endswith(f"error: {words}\n"), err
    return found
