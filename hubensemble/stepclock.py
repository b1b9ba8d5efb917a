"""`StepClock`: the time left of a progress bar (`terminal.progress_bar`'s ``clock``) whose
units are runs of known numbers of steps (tune's trials), from the steps left and the
measured seconds per step."""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable


class StepClock:
    """The time left of a bar whose units (trials) are runs of known numbers of steps: the
    steps left x the measured seconds per step, plus each unit left x the measured seconds
    between one unit's last step and the next one's first (predicting its val and test
    splits, writing it, loading the next module), where the units' own mean rate took every
    trial as alike (a 40-step trial done in 195 s said 03:46 left for a 200-step one: 7 more
    minutes) and knew none in a resumed sweep (its reused trials: "?" for 8 minutes). The
    steps alone ran 3-5x short where a trial's steps are a small part of it (a new user's
    check: 0.2 s of steps in a 0.85 s trial; a real test split takes minutes to predict).

    ``steps``: the planned steps of the units still to run (int >= 0). ``begin(planned)`` as
    a unit's steps start (ending the one before), ``step()`` after each of its steps,
    ``end()`` as its steps end (its steps not run, a trial failed early, are no longer waited
    for; it is still the running unit, predicting, until `trial_ended` or the next begin).
    `seconds_left`: None ("?" on the bar) until a step of this process was timed; the time
    between units counts once one such gap was timed. ``now``: the clock read, in seconds
    (time.monotonic). ``what``: the unit in a stop's line (`running_loss`): "the running
    trial" (tune's), "member 2 (trial T), retrained" (export's). Thread-safe (Keras runs
    batch hooks in its thread pool)."""

    def __init__(self, steps: int, now: Callable[[], float] | None = None, *,
                 what: str = "the running trial"):
        self._now = now or time.monotonic
        self.what = what
        self._lock = threading.Lock()
        self.left, self.timed, self.seconds = int(steps), 0, 0.0
        self.gaps, self.gap_seconds = 0, 0.0
        self._planned = self._seen = 0
        self._last = self._ended = None
        self._training = self._kept = False

    def begin(self, planned: int) -> None:
        """A unit of `planned` steps (int >= 0) starts now (the one running before ends); it
        is the running one `running_loss` names until it ends. The time since the unit
        before ended its steps is one timed gap between units."""
        global _RUNNING, _LEFT
        self.end()
        _LEFT = None  # a search runs: an earlier one's stop is no one's to say now
        with self._lock:
            now = self._now()
            if self._ended is not None:
                self.gaps, self.gap_seconds = self.gaps + 1, self.gap_seconds + now - self._ended
            self._planned, self._seen, self._last, self._ended = int(planned), 0, now, None
            self._training, self._kept = True, False
        _RUNNING = self

    def done_before(self, planned: int) -> None:
        """A unit of `planned` steps starts with its steps done (a trial whose trained
        weights a stop kept: it only predicts): none of them is left or timed."""
        self.begin(planned)
        with self._lock:
            self._seen, self.left = int(planned), max(self.left - int(planned), 0)
            self._kept = True
        self.end()

    def step(self) -> None:
        """One step of the running unit ended now: it is timed and no longer left."""
        with self._lock:
            now = self._now()
            if self._last is not None:
                self.timed, self.seconds = self.timed + 1, self.seconds + now - self._last
            self._last, self._seen = now, self._seen + 1
            self.left = max(self.left - 1, 0)

    def end(self) -> None:
        """The running unit's steps ended (its steps not run are no longer left); it stays
        the running unit, as `running_loss` names it, until `trial_ended` or `close`."""
        with self._lock:
            if not self._training:
                return
            self.left = max(self.left - max(self._planned - self._seen, 0), 0)
            self._training, self._last, self._ended = False, None, self._now()

    def close(self) -> None:
        """No unit runs any more (the sweep ended): `running_loss` names none."""
        global _RUNNING
        self.end()
        if _RUNNING is self:
            _RUNNING = None

    def left_by(self, stop: BaseException | None) -> None:
        """The search of this clock's trials ends stopped by `stop` (the exception leaving
        it, or the pending Ctrl-C / SIGTERM it returned under; None: no stop): no unit runs
        now, and what the stop loses of the running one (`_loss`) is kept for that stop's
        line alone (`running_loss`, while that very stop is handled), never for a later
        command's: a Python `run_tune` interrupted, then a command stopped in the same
        process before any trial, named the first one's trial."""
        global _LEFT
        lost = self._loss() if _RUNNING is self else None
        self.close()
        _LEFT = (lost, stop) if lost and stop is not None else None

    def _loss(self) -> str | None:
        """What a stop now loses of the running unit, in words (`running_loss`'s), or None."""
        at = self.at()
        if at is None:
            return None
        seen, planned, training = at
        if not training and self._kept:
            return (f"{self.what}, its {seen} steps done, keeps its trained weights: "
                    "resumed, it only predicts again")
        where = f"at step {seen}/{planned}" if training else f"its {seen} steps done"
        return f"{self.what}, {where}, restarts from its start"

    def seconds_left(self, units: int = 0) -> float | None:
        """Steps left x mean seconds per timed step, plus `units` (the units not finished,
        the running one too: int >= 0) x the mean timed gap between units; None before the
        first timed step."""
        with self._lock:
            if not self.timed:
                return None
            gap = self.gap_seconds / self.gaps if self.gaps else 0.0
            return self.left * self.seconds / self.timed + max(int(units), 0) * gap

    def at(self) -> tuple[int, int, bool] | None:
        """(steps run, steps planned, whether its steps still run) of the running unit; None
        when none runs."""
        with self._lock:
            return (self._seen, self._planned, self._training) if self._planned else None


#: The clock whose unit (a trial) is running in this process, if any (`StepClock.begin`).
_RUNNING: StepClock | None = None
#: (what it loses, the stop) of a search that a stop ended while a trial ran
#: (`StepClock.left_by`): said by that stop's line alone.
_LEFT: tuple[str, BaseException] | None = None


def training_kept(kept: bool = True) -> None:
    """The running trial's steps all ran, and its trained weights were kept for its
    resumption (`kept`; `tune.trained`) or could not be: a stop's line says it only
    predicts again, or that it restarts from its start. Its steps end (a stop in a
    callback's ``on_train_end`` came before the clock's own)."""
    clock = _RUNNING
    if clock is not None:
        clock.end()
        with clock._lock:
            clock._kept = bool(kept)


def trial_ended() -> None:
    """The running trial ended (its candidate written or failed: `tune.tuner`'s trial end):
    a stop now loses none of it."""
    global _RUNNING
    _RUNNING = None


def running_loss() -> str | None:
    """What a stop now loses of the trial that is running, once: "the running trial, at step
    20/200, restarts from its start" (a trial resumes from step 0: docs/tune.md), or, its
    steps done while it predicts or is written, "the running trial, its 200 steps done,
    restarts from its start" (it said nothing then: the window of a real test split's
    minutes), for the stop's line (`exits.stopped_code`); None when no trial runs. A search
    a stop ended (`StepClock.left_by`) is named only while that stop is handled: it is the
    exception being handled (`sys.exc_info`), or its cause or context, or the pending
    Ctrl-C / SIGTERM (`errors.pending_stop`). Forgets it, so a later stop in the same
    process does not name it again."""
    global _RUNNING, _LEFT
    clock, _RUNNING = _RUNNING, None
    left, _LEFT = _LEFT, None
    if clock is not None:
        return clock._loss()
    return left[0] if left is not None and _handled(left[1]) else None


def _handled(stop: BaseException) -> bool:
    """Whether `stop` is the stop being said now: the exception this thread handles, one
    it was raised from or while handling, or the pending Ctrl-C / SIGTERM."""
    from hubensemble.errors import pending_stop

    if pending_stop() is stop:
        return True
    seen, todo = set(), [sys.exc_info()[1]]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        if exc is stop:
            return True
        seen.add(id(exc))
        todo += [exc.__cause__, exc.__context__]
    return False
