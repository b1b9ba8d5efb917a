"""stepclock: what a stop's line says of the running trial whose trained weights were kept
(`training_kept`) or which starts with its steps done (`StepClock.done_before`)."""

from hubensemble.stepclock import StepClock, running_loss, trial_ended, training_kept


def test_a_trial_whose_training_was_kept_is_said_to_only_predict_again():
    clock = StepClock(10)
    clock.begin(4)
    for _ in range(4):
        clock.step()
    # A stop in a callback's on_train_end: the clock's own end never came; the weights kept.
    training_kept()
    assert clock.left == 6
    assert running_loss() == ("the running trial, its 4 steps done, keeps its trained "
                              "weights: resumed, it only predicts again")
    clock.begin(6)  # resumed: its steps done before, it only predicts
    assert running_loss() == "the running trial, at step 0/6, restarts from its start"
    clock.done_before(6)
    assert clock.left == 0 and clock.timed == 4
    assert running_loss() == ("the running trial, its 6 steps done, keeps its trained "
                              "weights: resumed, it only predicts again")
    clock.done_before(6)
    training_kept(False)  # the weights could not be written this time
    assert running_loss() == "the running trial, its 6 steps done, restarts from its start"
    trial_ended()
    assert running_loss() is None
