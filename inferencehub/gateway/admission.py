"""Admission at the door: refuse at once what would only wait, before its payload is decoded.

Under overload a queue only adds latency: once a version's instances are busy, every request
queued behind them waits for all those before it, and one that cannot be answered before its
deadline is computed for nobody. So each version's lane in the gateway keeps its pace (the
mean time between answers while it was busy) and the door refuses a request when

- the backlog is at `max_queue_size` (the version's own bound), or
- the backlog already holds what the version answers in `TARGET_WAIT_S`, but never fewer than
  `MIN_BACKLOG` requests (light concurrency is never refused on a slow model), or
- the answer is due after the request's deadline: it would fail anyway, later, and cost a run.

A refusal is RESOURCE_EXHAUSTED (HTTP 429) with a retry hint (protocol/status.py): `Retry-After`
/ gRPC's `grpc-retry-pushback-ms`. The check reads three numbers: microseconds, before any decoding.
"""

from __future__ import annotations

from inferencehub.errors import OverloadedError

# What a version's queue may hold, in its own time: answered within this, at its recent pace.
TARGET_WAIT_S = 0.2
# ... but a backlog this deep is always let in (when its deadline allows): a slow model still
# takes a few clients at once, and a pace measured on a noisy box cannot refuse light load.
MIN_BACKLOG = 16
# A request is admitted only when its answer is expected within this share of its deadline:
# the pace is an estimate, and a run may take longer than the last ones.
DEADLINE_SHARE = 0.8
# Weight of the newest gap between answers in the pace (a moving average).
PACE_WEIGHT = 0.1


class Pace:
    """How fast a lane's requests are answered lately: the mean gap between answers while
    requests were outstanding (an idle gap says nothing about the version's speed)."""

    __slots__ = ("_busy", "_last", "interval_s")

    def __init__(self) -> None:
        self.interval_s = 0.0  # 0: not measured yet
        self._last = 0.0
        self._busy = False

    def answered(self, now: float, outstanding: int) -> None:
        """An answer came at `now`; `outstanding` requests of the lane are still unanswered."""
        if self._busy:
            gap, mean = now - self._last, self.interval_s
            self.interval_s = mean + PACE_WEIGHT * (gap - mean) if mean else gap
        self._last = now
        self._busy = outstanding > 0


def refusal(
    what: str,
    backlog: int,
    pace: Pace,
    max_backlog: int,
    instances: int,
    timeout_s: float,
    *,
    short_queue: bool = True,
) -> OverloadedError | None:
    """Why a new request for `what` (a model version) must be refused now, or None.

    `backlog`: its requests queued or unanswered; `max_backlog`: max_queue_size (0: any);
    `timeout_s`: what is left of the new request's deadline. `short_queue=False` skips the
    TARGET_WAIT_S rule: the items of one PredictMany call are one client's batch, bounded by
    max_queue_size and their deadline, not refused after the 16th.
    """
    if max_backlog and backlog >= max_backlog:
        return OverloadedError(
            f"{what} has {backlog} requests waiting (max_queue_size); retry later"
        )
    interval = pace.interval_s
    if not interval:
        return None
    if short_queue and backlog >= max(MIN_BACKLOG, TARGET_WAIT_S / interval):
        return OverloadedError(
            f"{what} has {backlog} requests waiting, about {backlog * interval * 1e3:.0f} ms of "
            "work; retry later"
        )
    due_s = (backlog + max(1, instances)) * interval
    if due_s > timeout_s * DEADLINE_SHARE:
        return OverloadedError(
            f"{what} would answer in about {due_s * 1e3:.0f} ms, after the request's "
            f"{timeout_s * 1e3:.0f} ms deadline; retry later or allow more time"
        )
    return None
