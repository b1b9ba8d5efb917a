"""`StepClock`: the time left of a progress bar (`terminal.progress_bar`'s ``clock``) whose
units are runs of known numbers of steps (tune's trials), from the steps left and the
measured seconds per step."""

from __future__ import annotations

import threading
import time
from typing import Callable


class StepClock:
    """The time left of a bar whose units (trials) are runs of known numbers of steps, from
    the steps left x the measured seconds per step, where the units' own mean rate took every
    trial as alike (a 40-step trial done in 195 s said 03:46 left for a 200-step one: 7 more
    minutes) and knew none in a resumed sweep (its reused trials: "?" for 8 minutes).

    ``steps``: the planned steps of the units still to run (int >= 0). ``begin(planned)`` as
    a unit's steps start (ending the one before), ``step()`` after each of its steps,
    ``end()`` as it ends (its steps not run, a trial failed early, are no longer waited
    for). `seconds_left`: None ("?" on the bar) until a step of this process was timed.
    ``now``: the clock read, in seconds (time.monotonic). Thread-safe (Keras runs batch
    hooks in its thread pool). The time between trials (loading a module, predicting) is
    not in it: a step's seconds are timed from its trial's first step's start."""

    def __init__(self, steps: int, now: Callable[[], float] | None = None):
        self._now = now or time.monotonic
        self._lock = threading.Lock()
        self.left, self.timed, self.seconds = int(steps), 0, 0.0
        self._planned = self._seen = 0
        self._last = None

    def begin(self, planned: int) -> None:
        """A unit of `planned` steps (int >= 0) starts now (the one running before ends); it
        is the running one `running_loss` names until it ends."""
        global _RUNNING
        self.end()
        with self._lock:
            self._planned, self._seen, self._last = int(planned), 0, self._now()
        _RUNNING = self

    def step(self) -> None:
        """One step of the running unit ended now: it is timed and no longer left."""
        with self._lock:
            now = self._now()
            if self._last is not None:
                self.timed, self.seconds = self.timed + 1, self.seconds + now - self._last
            self._last, self._seen = now, self._seen + 1
            self.left = max(self.left - 1, 0)

    def end(self) -> None:
        """The running unit ended: its steps not run are no longer left."""
        global _RUNNING
        if _RUNNING is self:
            _RUNNING = None
        with self._lock:
            self.left = max(self.left - max(self._planned - self._seen, 0), 0)
            self._planned = self._seen = 0
            self._last = None

    def seconds_left(self) -> float | None:
        """Steps left x mean seconds per timed step; None before the first."""
        with self._lock:
            return self.left * self.seconds / self.timed if self.timed else None

    def at(self) -> tuple[int, int] | None:
        """(steps run, steps planned) of the running unit; None when none runs."""
        with self._lock:
            return (self._seen, self._planned) if self._planned else None


#: The clock whose unit (a trial) is running in this process, if any (`StepClock.begin`).
_RUNNING: StepClock | None = None


def running_loss() -> str | None:
    """What a stop now loses of the trial that is running, once: "the running trial, at step
    20/200, restarts from its start" (a trial resumes from step 0: docs/tune.md), for
    the stop's line (`exits.stopped_code`); None when no trial runs. Forgets it, so a later
    stop in the same process does not name it again."""
    global _RUNNING
    clock, _RUNNING = _RUNNING, None
    at = clock.at() if clock is not None else None
    if at is None:
        return None
    return f"the running trial, at step {at[0]}/{at[1]}, restarts from its start"
