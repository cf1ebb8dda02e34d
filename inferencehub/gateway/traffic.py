"""Requests, errors and latency per model version, as the gateway saw them.

A snapshot of every version's series is kept each second for a minute: the last 10 s give the
live rates and percentiles, consecutive snapshots the per-second history (the status view's
sparklines).

Latencies go into fixed log-spaced buckets (20 per decade, so a percentile is within 12 % of
the truth) instead of a sample list: recording is O(1), memory is fixed, and two snapshots
subtract, which is how the canary controller compares versions over one ramp step.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass, field

from inferencehub.protocol.routing import version_order
from inferencehub.v1 import inference_pb2 as pb

_PER_DECADE = 20
# Upper bounds in seconds: 10 us .. 100 s; one more bucket catches the rest.
BOUNDS_S: tuple[float, ...] = tuple(
    10 ** (k / _PER_DECADE) for k in range(-5 * _PER_DECADE, 2 * _PER_DECADE + 1)
)
HISTORY_S = 60
RECENT_S = 10


@dataclass
class Series:
    """One version's requests in one role (primary or shadow)."""

    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS_S) + 1))
    sum_s: float = 0.0
    # Sum over answered requests of the batch size the worker ran each in.
    batch_sum: int = 0

    def record(self, seconds: float, ok: bool, batch_size: int = 0) -> None:
        self.requests += 1
        self.errors += not ok
        self.sum_s += seconds
        self.batch_sum += batch_size
        self.buckets[bisect.bisect_left(BOUNDS_S, seconds)] += 1

    def copy(self) -> Series:
        return Series(self.requests, self.errors, list(self.buckets), self.sum_s, self.batch_sum)

    def minus(self, earlier: Series | None) -> Series:
        """What happened since `earlier` (a copy taken from this series)."""
        if earlier is None:
            return self.copy()
        return Series(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            [a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)],
            self.sum_s - earlier.sum_s,
            self.batch_sum - earlier.batch_sum,
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def avg_batch_size(self) -> float:
        answered = self.requests - self.errors
        return self.batch_sum / answered if answered else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds: the upper bound of the bucket holding it (0 if
        empty), so it never flatters a version."""
        total = sum(self.buckets)
        if not total:
            return 0.0
        rank = max(1, math.ceil(q / 100 * total))
        seen = 0
        for index, count in enumerate(self.buckets):
            seen += count
            if seen >= rank:
                return BOUNDS_S[min(index, len(BOUNDS_S) - 1)]
        return BOUNDS_S[-1]  # pragma: no cover - the loop always reaches rank

    def percentiles(self) -> pb.Percentiles:
        return pb.Percentiles(
            p50_ms=self.percentile(50) * 1e3,
            p95_ms=self.percentile(95) * 1e3,
            p99_ms=self.percentile(99) * 1e3,
        )


@dataclass
class VersionCounters:
    primary: Series = field(default_factory=Series)
    shadow: Series = field(default_factory=Series)
    shadow_dropped: int = 0
    shadow_mismatches: int = 0


class TrafficStats:
    """Updated and read on the gateway's event loop only: no locks."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], VersionCounters] = {}
        # One snapshot a second, the oldest first; the first one is the empty start.
        self._history: deque[dict[tuple[str, str], Series]] = deque([{}], maxlen=HISTORY_S + 1)

    def counters(self, model: str, version: str) -> VersionCounters:
        key = (model, version)
        found = self._versions.get(key)
        if found is None:
            found = self._versions[key] = VersionCounters()
        return found

    def series(self, model: str, version: str) -> Series | None:
        """The primary series of a version, or None if it served nothing yet."""
        found = self._versions.get((model, version))
        return found.primary if found is not None else None

    def tick(self) -> None:
        """Remember where every series stands now (call once a second)."""
        self._history.append({k: c.primary.copy() for k, c in self._versions.items()})

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.tick()

    def to_proto(
        self, name: str = "", queue_depths: dict[tuple[str, str], int] | None = None
    ) -> list[pb.VersionTraffic]:
        snapshots = list(self._history)
        return [
            self._version_proto(
                model, version, c, (queue_depths or {}).get((model, version), 0), snapshots
            )
            for (model, version), c in sorted(
                self._versions.items(), key=lambda i: (i[0][0], version_order(i[0][1]))
            )
            if not name or model == name
        ]

    @staticmethod
    def _version_proto(
        model: str,
        version: str,
        c: VersionCounters,
        queue_depth: int,
        snapshots: list[dict[tuple[str, str], Series]],
    ) -> pb.VersionTraffic:
        key = (model, version)
        window_s = max(1, min(RECENT_S, len(snapshots) - 1))
        recent = c.primary.minus(snapshots[-window_s - 1].get(key) if len(snapshots) > 1 else None)
        counts = [s[key].requests if key in s else 0 for s in snapshots]
        history = [b - a for a, b in itertools.pairwise(counts)]
        return pb.VersionTraffic(
            name=model,
            version=version,
            requests=c.primary.requests,
            errors=c.primary.errors,
            latency=c.primary.percentiles(),
            shadow_requests=c.shadow.requests,
            shadow_errors=c.shadow.errors,
            shadow_dropped=c.shadow_dropped,
            shadow_mismatches=c.shadow_mismatches,
            shadow_latency=c.shadow.percentiles(),
            requests_per_s=recent.requests / window_s,
            recent_error_rate=recent.error_rate,
            recent_latency=recent.percentiles(),
            avg_batch_size=recent.avg_batch_size,
            queue_depth=queue_depth,
            requests_history=[0] * (HISTORY_S - len(history)) + history,
        )
