"""What the gateway tells operators: GET /metrics (Prometheus) and GET /v1/status.

Request metrics are observed as requests pass; everything that lives elsewhere (the worker's
queues and statistics, the supervisor's restarts, every process's RSS and CPU) is gathered at
scrape time with short deadlines, so /metrics always answers, even while the worker is away.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import psutil
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from inferencehub import __version__
from inferencehub.errors import HubError
from inferencehub.gateway.auth import Authenticator
from inferencehub.gateway.dataplane import DataPlane
from inferencehub.protocol.hub_status import DoorStatus, HubStatus, ProcessStatus
from inferencehub.protocol.json_codec import model_to_json, traffic_to_json
from inferencehub.state import read_state
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)


@dataclass
class Scrape:
    """What lives outside the request path, gathered just before rendering."""

    models: list[pb.ModelInfo] = field(default_factory=list)
    statistics: list[pb.VersionStatistics] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    worker_serving: bool = False
    state: dict[str, Any] | None = None  # the supervisor's state file


class _ScrapeCollector(Collector):
    def __init__(self, observer: Observer) -> None:
        self._observer = observer
        self.scrape = Scrape()

    def collect(self) -> Iterator[Any]:
        scrape, observer = self.scrape, self._observer
        up = GaugeMetricFamily("inferencehub_worker_serving", "1 while the worker serves.")
        up.add_metric([], 1.0 if scrape.worker_serving else 0.0)
        yield up
        loaded = GaugeMetricFamily(
            "inferencehub_model_version_ready",
            "1 per loaded version, with its state and the execution provider in use.",
            labels=["model", "version", "state", "provider"],
        )
        for model in scrape.models:
            for v in model.versions:
                state = pb.ModelVersion.State.Name(v.state)
                loaded.add_metric(
                    [model.name, v.version, state, v.provider],
                    1.0 if v.state == pb.ModelVersion.READY else 0.0,
                )
        yield loaded
        depth = GaugeMetricFamily(
            "inferencehub_queue_depth",
            "Requests waiting for an instance in the worker.",
            labels=["model", "version"],
        )
        inferences = CounterMetricFamily(
            "inferencehub_inferences",
            "Batch items inferred (the KServe statistics' inference_count).",
            labels=["model", "version"],
        )
        executions = CounterMetricFamily(
            "inferencehub_executions",
            "ONNX Runtime runs (the KServe statistics' execution_count).",
            labels=["model", "version"],
        )
        for s in scrape.statistics:
            depth.add_metric([s.name, s.version], s.queue_depth)
            inferences.add_metric([s.name, s.version], s.inference_count)
            executions.add_metric([s.name, s.version], s.execution_count)
        yield from (depth, inferences, executions)
        in_flight = GaugeMetricFamily(
            "inferencehub_in_flight_requests", "Predict requests in the gateway now."
        )
        in_flight.add_metric([], observer.dataplane.in_flight)
        yield in_flight
        serving = GaugeMetricFamily(
            "inferencehub_worker_up", "1 per worker that serves.", labels=["worker", "address"]
        )
        outstanding = GaugeMetricFamily(
            "inferencehub_worker_outstanding_requests",
            "Requests sent to each worker and not answered yet (the load the gateway balances).",
            labels=["worker"],
        )
        workers = observer.dataplane.workers()
        for worker in workers:
            serving.add_metric([worker["name"], worker["address"]], float(worker["serving"]))
            outstanding.add_metric([worker["name"]], worker["outstanding"])
        yield from (serving, outstanding)
        yield from _hop_families(workers)
        yield from _process_families(scrape.processes)
        yield from _door_families(observer.authenticator)
        yield from _version_families(observer.dataplane, scrape.models)


# (name, help, key in a worker's "hop" status, counter?)
_HOP_SERIES = (
    ("arena_bytes", "Size of the shared-memory arena the gateway shares with each worker.",
     "arena_bytes", False),
    ("arena_used_bytes", "Arena bytes held by requests now.", "arena_used_bytes", False),
    ("arena_slots", "Requests holding an arena slot now.", "arena_slots", False),
    ("arena_high_water_bytes", "Arena bytes ever touched (memory it really uses).",
     "arena_high_water_bytes", False),
    ("arena_refusals", "Requests refused because the arena was full (429).", "arena_refusals",
     True),
    ("hop_messages", "Messages sent to each worker (requests share them).", "messages_sent", True),
    ("worker_hop_sessions", "Hop streams each worker has open.", "worker_sessions", False),
    ("worker_arenas_mapped", "Arenas each worker maps (one per session, until its last request "
     "lets go).", "worker_arenas_mapped", False),
    ("worker_slots_held", "Arena slots each worker holds: requests it has not answered.",
     "worker_slots_held", False),
)  # fmt: skip


def _hop_families(workers: list[dict[str, Any]]) -> Iterator[Any]:
    """The hop, both sides: the gateway's arena use, and what each worker holds for it."""
    for name, text, key, counter in _HOP_SERIES:
        family_type = CounterMetricFamily if counter else GaugeMetricFamily
        family = family_type(f"inferencehub_{name}", text, labels=["worker"])
        for worker in workers:
            family.add_metric([worker["name"]], worker["hop"][key])
        yield family
    requests = CounterMetricFamily(
        "inferencehub_hop_requests",
        "Requests sent to each worker, by where their tensor bytes travelled.",
        labels=["worker", "path"],
    )
    for worker in workers:
        requests.add_metric([worker["name"], "arena"], worker["hop"]["arena_requests"])
        requests.add_metric([worker["name"], "inline"], worker["hop"]["inline_requests"])
    yield requests


def _process_families(processes: list[dict[str, Any]]) -> Iterator[Any]:
    rss = GaugeMetricFamily(
        "inferencehub_process_resident_memory_bytes", "RSS per process.", labels=["role"]
    )
    cpu = CounterMetricFamily(
        "inferencehub_process_cpu_seconds", "CPU time per process.", labels=["role"]
    )
    restarts = CounterMetricFamily(
        "inferencehub_process_restarts", "Restarts by the supervisor.", labels=["role"]
    )
    for p in processes:
        if p.get("rss_bytes") is not None:
            rss.add_metric([p["role"]], p["rss_bytes"])
        if p.get("cpu_seconds") is not None:
            cpu.add_metric([p["role"]], p["cpu_seconds"])
        restarts.add_metric([p["role"]], p.get("restarts", 0))
    yield from (rss, cpu, restarts)


def _door_families(authenticator: Authenticator | None) -> Iterator[Any]:
    refused = CounterMetricFamily(
        "inferencehub_refused_requests",
        "Requests refused at the door: rate limits (429) and missing or bad keys (401).",
        labels=["reason"],
    )
    if authenticator is not None:
        refused.add_metric(["rate_limited"], authenticator.rate_limited)
        refused.add_metric(["unauthenticated"], authenticator.unauthenticated)
    yield refused


def _version_families(dataplane: DataPlane, models: list[pb.ModelInfo]) -> Iterator[Any]:
    shadow = CounterMetricFamily(
        "inferencehub_shadow_requests",
        "Mirrored requests by outcome: ok, error, mismatch (answered differently), dropped.",
        labels=["model", "version", "outcome"],
    )
    for t in dataplane.traffic_stats.to_proto():
        if t.shadow_requests or t.shadow_dropped:
            for outcome, count in (
                ("ok", t.shadow_requests - t.shadow_errors),
                ("error", t.shadow_errors),
                ("mismatch", t.shadow_mismatches),
                ("dropped", t.shadow_dropped),
            ):
                shadow.add_metric([t.name, t.version, outcome], count)
    yield shadow
    weight = GaugeMetricFamily(
        "inferencehub_route_weight",
        "Share (percent) of requests naming no version that each version gets.",
        labels=["model", "version"],
    )
    canary = GaugeMetricFamily(
        "inferencehub_canary_state",
        "1 for the state of each model's latest canary rollout.",
        labels=["model", "version", "state"],
    )
    for model in models:
        total = sum(model.routing.weights.values())
        for version, share in model.routing.weights.items():
            weight.add_metric([model.name, version], 100.0 * share / total if total else 0.0)
        if model.routing.HasField("canary"):
            rollout = model.routing.canary
            canary.add_metric(
                [model.name, rollout.version, pb.Canary.State.Name(rollout.state)], 1.0
            )
    yield from (weight, canary)


class _ProcessProbe:
    """RSS and CPU of the hub's processes; psutil.Process objects are kept so cpu_percent
    measures between two calls."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def sample(self, pid: int | None) -> dict[str, Any]:
        if pid is None:
            return {"rss_bytes": None, "cpu_percent": None, "cpu_seconds": None}
        try:
            process = self._processes.get(pid)
            if process is None:
                process = self._processes[pid] = psutil.Process(pid)
                process.cpu_percent(None)  # the first call only starts the measurement
            with process.oneshot():
                times = process.cpu_times()
                return {
                    "rss_bytes": process.memory_info().rss,
                    "cpu_percent": process.cpu_percent(None),
                    "cpu_seconds": times.user + times.system,
                }
        except psutil.Error:
            self._processes.pop(pid, None)
            return {"rss_bytes": None, "cpu_percent": None, "cpu_seconds": None}


class Observer:
    """Builds /metrics and /v1/status from the DataPlane, the worker and the supervisor."""

    def __init__(
        self,
        dataplane: DataPlane,
        registry: CollectorRegistry,
        authenticator: Authenticator | None = None,
        state_file: Path | None = None,
    ) -> None:
        """`registry`: where the DataPlane's RequestMetrics live; the scrape-time families
        join them there."""
        self.dataplane = dataplane
        self.authenticator = authenticator
        self._state_file = state_file
        self._started = time.monotonic()
        self._probe = _ProcessProbe()
        self.registry = registry
        self._collector = _ScrapeCollector(self)
        self.registry.register(self._collector)

    async def metrics(self) -> bytes:
        self._collector.scrape = await self._gather()
        return generate_latest(self.registry)

    async def status(self) -> HubStatus:
        scrape = await self._gather()
        depths = {(s.name, s.version): s.queue_depth for s in scrape.statistics}
        visible = {m.name for m in self.dataplane.visible(scrape.models)}
        authenticator = self.authenticator
        state = scrape.state
        return {
            "version": __version__,
            # The hub's age (the supervisor's), else this gateway's.
            "uptime_s": round(time.time() - state["started_at"], 1)
            if state is not None
            else round(time.monotonic() - self._started, 1),
            "worker_serving": scrape.worker_serving,
            "supervisor": state,
            "processes": [
                cast(ProcessStatus, {k: v for k, v in p.items() if k != "cpu_seconds"})
                for p in scrape.processes
            ],
            "door": DoorStatus(
                auth=bool(authenticator and authenticator.active_keys),
                keys=authenticator.active_keys if authenticator else 0,
                rate_limit_per_s=authenticator.global_rate_per_s if authenticator else 0.0,
                rate_limited=authenticator.rate_limited if authenticator else 0,
                unauthenticated=authenticator.unauthenticated if authenticator else 0,
                in_flight=self.dataplane.in_flight,
                max_in_flight=self.dataplane.max_in_flight,
            ),
            "workers": self.dataplane.workers(),
            "models": [model_to_json(m) for m in scrape.models if m.name in visible],
            "traffic": [
                traffic_to_json(t)
                for t in self.dataplane.traffic_stats.to_proto("", depths)
                if t.name in visible
            ],
        }

    def _state(self) -> dict[str, Any] | None:
        return read_state(self._state_file) if self._state_file is not None else None

    async def _gather(self) -> Scrape:
        scrape = Scrape(
            worker_serving=await self.dataplane.ready(),
            models=self.dataplane.known_models(),
            state=self._state(),
        )
        try:
            scrape.statistics = await self.dataplane.all_statistics()
        except HubError as exc:  # the worker is away: say so, answer with the rest
            logger.debug("status without the worker's numbers: %s", exc.message)
        scrape.processes = self._processes(scrape.state)
        return scrape

    def _processes(self, state: dict[str, Any] | None) -> list[dict[str, Any]]:
        now = time.time()
        rows: list[dict[str, Any]] = []
        if state is not None:
            rows.append(
                {
                    "role": "supervisor",
                    "pid": state.get("supervisor_pid"),
                    "state": "running",
                    "uptime_s": round(now - state["started_at"], 1),
                    "restarts": 0,
                    "last_exit": None,
                    **self._probe.sample(state.get("supervisor_pid")),
                }
            )
            for p in state.get("processes", []):
                rows.append(
                    {
                        "role": p["role"],
                        "pid": p.get("pid"),
                        "state": p.get("state", "-"),
                        "uptime_s": round(now - p["started_at"], 1)
                        if p.get("started_at") and p.get("state") == "running"
                        else None,
                        "restarts": p.get("restarts", 0),
                        "last_exit": f"code {p['last_exit_code']} ({p.get('last_exit_reason')})"
                        if p.get("last_exit_code") is not None
                        else None,
                        **self._probe.sample(p.get("pid") if p.get("state") == "running" else None),
                    }
                )
        else:  # a gateway started on its own (tests, development): itself only
            rows.append(
                {
                    "role": "gateway",
                    "pid": os.getpid(),
                    "state": "running",
                    "uptime_s": round(time.monotonic() - self._started, 1),
                    "restarts": 0,
                    "last_exit": None,
                    **self._probe.sample(os.getpid()),
                }
            )
        return rows
