"""The pool checks of `tune` (`hubensemble.sweeppool`, re-exported): their code lives outside
this package, which loads TensorFlow first, so that the command line checks a call's pool
before TensorFlow loads (`tunepending`)."""

from hubensemble.sweeppool import (UNREADABLE, callers_words, check_candidates,  # noqa: F401
                                   check_pool, say_unfinished_profile, sweep_changes,
                                   trial_differences, worker_changes)
