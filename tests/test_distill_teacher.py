"""distill's check of a teacher export retrained on train + val (`distillcompare.retrained_test`):
a signature it cannot run is refused naming that signature and the command that exports the
run again."""

import json

import numpy as np
import pytest
import tensorflow as tf

from hubensemble.data import Split, Task
from hubensemble.distillcompare import retrained_test
from hubensemble.errors import RunError
from hubensemble.lockwords import command_line


def build_teacher(path, serving_key, members_key, retrain_full=True):
    """A SavedModel of serving_default (its output named `serving_key`) and serve_members
    (`members_key`: 2 members of 3 classes on the images' mean colour), with the metadata of
    an export (assets/hubensemble.json: classes a, b, c), retrained on train + val with
    `retrain_full`."""
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")

    def probs(images):
        return tf.nn.softmax((tf.reduce_mean(images, axis=[1, 2]) - 0.5) * 10.0)

    @tf.function(input_signature=[spec])
    def serving_default(images):
        return {serving_key: probs(images)}

    @tf.function(input_signature=[spec])
    def serve_members(images):
        return {members_key: tf.stack([probs(images)] * 2, axis=1)}

    root = tf.train.Checkpoint()
    root.serving_default, root.serve_members = serving_default, serve_members
    tf.saved_model.save(root, str(path), signatures={
        "serving_default": serving_default.get_concrete_function(),
        "serve_members": serve_members.get_concrete_function()})
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / "hubensemble.json").write_text(json.dumps(
        {"format": "hubensemble-export", "class_names": ["a", "b", "c"], "num_classes": 3,
         "retrain_full": retrain_full,
         "members": [{"trial": f"t{i}", "weight": 0.5} for i in (0, 1)]}))
    return path


@pytest.mark.parametrize("serving_key, members_key, said", [
    ("output_0", "member_probabilities",
     "serving_default signature returns ['output_0'], not 'probabilities'"),
    ("probabilities", "member_scores",
     "serve_members signature returns ['member_scores'], not 'member_probabilities'")])
def test_a_teacher_signature_distill_cannot_run_is_refused_with_the_way_on(
        tmp_path, serving_key, members_key, said):
    """distill's run of a --retrain-full teacher on the test split said "the signature
    returns ['member_scores'], not 'member_probabilities'": no export named, no way on
    (evaluate's calls it shares were given them). It names the teacher's signature and the
    command that exports the run again, --retrain-full as it was, in the caller's words.
    Fails before: "the signature returns …" alone."""
    run = tmp_path / "RUN"
    export = build_teacher(run / "export", serving_key, members_key)
    loaded = tf.saved_model.load(str(export))
    images = (np.random.default_rng(0).random((6, 4, 4, 3)) * 255).astype(np.uint8)
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images, labels=np.arange(6) % 3),
                test=Split(images=images, labels=np.arange(6) % 3))
    with command_line(), pytest.raises(RunError) as typed:
        retrained_test(loaded, str(export), task, run_dir=str(run))
    assert str(typed.value) == (f"the teacher export {export}'s {said}; export the run again "
                                f"with `hubensemble export --run {run} --retrain-full`")
    with pytest.raises(RunError) as python:
        retrained_test(loaded, str(export), task, run_dir=str(run))
    assert str(python.value).endswith(f"; export the run again with export_ensemble(run_dir="
                                      f"{str(run)!r}, retrain_full=True)"), python.value


def test_a_teacher_not_retrained_without_probabilities_is_refused_before_distill_trains(
        tmp_path):
    """A teacher export not retrained (its test figures are ensemble.json's, not run) whose
    serving_default returns no 'probabilities' failed in distill's training with a KeyError:
    it is refused with the others' words, the way on without --retrain-full. Fails before:
    None returned (no check)."""
    run = tmp_path / "RUN"
    export = build_teacher(run / "export", "output_0", "member_probabilities",
                           retrain_full=False)
    images = (np.random.default_rng(0).random((3, 4, 4, 3)) * 255).astype(np.uint8)
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images, labels=np.arange(3)),
                test=Split(images=images, labels=np.arange(3)))
    with command_line(), pytest.raises(RunError) as typed:
        retrained_test(tf.saved_model.load(str(export)), str(export), task, run_dir=str(run))
    assert str(typed.value) == (
        f"the teacher export {export}'s serving_default signature returns ['output_0'], not "
        f"'probabilities'; export the run again with `hubensemble export --run {run}`")
