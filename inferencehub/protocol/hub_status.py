"""The shape of GET /v1/status: what the gateway builds (gateway/observe.py) and what
`inferencehub status` reads (status_view.py, through the SDK's HttpClient.status()).

Typed here, beside the other wire formats, so both ends name the same fields. Entries that
come from elsewhere keep their own shapes: `models` and `traffic` are json_codec's renderings
of ModelInfo and VersionTraffic, `supervisor` is the supervisor's state file (state.py).
"""

from __future__ import annotations

from typing import Any, TypedDict


class DoorStatus(TypedDict):
    """The gateway's door: keys, rate limits and requests in flight."""

    auth: bool
    keys: int
    rate_limit_per_s: float
    rate_limited: int
    unauthenticated: int
    in_flight: int
    max_in_flight: int


class ProcessStatus(TypedDict):
    """One process of the hub, from the supervisor's state and a psutil sample."""

    role: str
    pid: int | None
    state: str
    uptime_s: float | None
    restarts: int
    last_exit: str | None
    rss_bytes: int | None
    cpu_percent: float | None


class WorkerStatus(TypedDict):
    """One worker as the gateway's pool sees it (WorkerPool.describe)."""

    name: str
    address: str
    serving: bool
    outstanding: int
    models: list[str]
    hop: dict[str, int]


class HubStatus(TypedDict):
    version: str
    uptime_s: float  # the hub's age (the supervisor's), else the gateway's
    worker_serving: bool
    supervisor: dict[str, Any] | None
    processes: list[ProcessStatus]
    door: DoorStatus
    workers: list[WorkerStatus]
    models: list[dict[str, Any]]
    traffic: list[dict[str, Any]]
