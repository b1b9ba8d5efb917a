"""A worker of a chief/worker sweep stops when its chief has gone, instead of waiting for it.

Keras Tuner's client (`keras_tuner.src.distribute.oracle_client.OracleClient`) asks the chief
through gRPC with ``wait_for_ready=True`` and an hour's time-out (its TIMEOUT), so a worker
whose chief was killed waited up to an hour inside each call. `watch_chief` makes each call
of the client's ``stub`` a gRPC future, waited on in slices of `CHIEF_POLL` seconds: between
two, it looks at the chief (`sweeplock.chief_gone`: its lock and pid records, or with no
lock file its address), and when two looks in a row find it gone it cancels the call and
raises `ChiefGone`. The request is sent once; a chief that answers late is simply waited for.
"""

from __future__ import annotations

import keras_tuner as kt

from hubensemble.errors import RunError

#: Seconds between two looks at the chief while a worker waits for its answer.
CHIEF_POLL = 2.0


class ChiefGone(kt.errors.FatalError):
    """A worker's chief has gone while the worker waited for its answer. A FatalError, so
    Keras Tuner's loop does not take it for a failed trial; `error` is the RunError to stop
    with (`sweeplock.worker_without_chief`)."""

    def __init__(self, error: RunError):
        super().__init__(str(error))
        self.error = error


class _WatchedCall:
    """One method of a gRPC stub (a unary-unary multicallable), called through its future."""

    def __init__(self, call, gone, poll):
        self._call, self._gone, self._poll = call, gone, poll

    def __call__(self, request, **kwargs):
        import grpc

        future = self._call.future(request, **kwargs)
        seen = 0  # looks in a row that found the chief gone
        try:
            while True:
                try:
                    return future.result(timeout=self._poll)
                except grpc.FutureTimeoutError:
                    error = self._gone()
                    seen = seen + 1 if error is not None else 0
                    if seen >= 2:
                        raise ChiefGone(error) from None
        except BaseException:  # the chief gone, Ctrl-C, SIGTERM: the call is not waited for
            future.cancel()
            raise


class _WatchedStub:
    def __init__(self, stub, gone, poll):
        self._stub, self._gone, self._poll = stub, gone, poll

    def __getattr__(self, name):
        return _WatchedCall(getattr(self._stub, name), self._gone, self._poll)


def watch_chief(client, gone, poll: float | None = None):
    """Makes Keras Tuner's OracleClient `client` (a worker's `tuner.oracle`) stop waiting for
    a chief that has gone: each call of its ``stub`` is waited on `poll` seconds (default
    CHIEF_POLL) at a time,
    and `gone()` (a RunError when the chief has gone, else None) is asked between two; when
    it gives an error twice in a row the call is cancelled and ChiefGone(that error) raised.
    Returns `client`. Internal: OracleClient.stub (KERAS_TUNER_INTERNALS)."""
    client.stub = _WatchedStub(client.stub, gone, CHIEF_POLL if poll is None else poll)
    return client
