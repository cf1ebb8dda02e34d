"""What an operator sees of a live appliance: /metrics (checked with prometheus_client's own
parser), the /v1/status snapshot, and request ids that follow a request into the worker's log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferencehub.client import connect
from tests.hub import Hub, running_hub, wait_for
from tests.model_builders import scale_model

pytestmark = pytest.mark.e2e

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def samples(
    hub: Hub, reply: httpx.Response | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics (or of `reply`, a scrape already made) by (name, sorted
    labels), parsed as Prometheus would."""
    reply = reply or httpx.get(f"{hub.http_url}/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def past_the_door(hub: Hub, path: str) -> httpx.Response:
    """GET `path`, again while the rate limit refuses it (429): a wait for a token, however
    long the server takes to grant one."""
    got: dict[str, httpx.Response] = {}

    def admitted() -> bool:
        got["reply"] = httpx.get(f"{hub.http_url}{path}", timeout=10)
        return got["reply"].status_code != 429

    wait_for(admitted, what=f"the rate limit to let GET {path} through")
    return got["reply"]


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("observe")
    scale_model(root / "models" / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    scale_model(root / "models" / "m" / "2" / "model.onnx", [2, 2, 2, 2])
    with running_hub(root / "models", root, "--log-level", "DEBUG", "--log-format", "json") as hub:
        yield hub


def test_metrics_count_requests_by_model_version_protocol_and_code(hub: Hub) -> None:
    before = samples(hub)
    with httpx.Client(timeout=10) as client:
        for _ in range(7):
            assert client.post(f"{hub.http_url}/v1/models/m/predict", json=BODY).status_code == 200
        assert client.post(f"{hub.http_url}/v1/models/m/versions/1/predict", json=BODY).is_success
        bad = client.post(f"{hub.http_url}/v1/models/m/predict", content=b"{not json")
        assert bad.status_code == 400
        assert client.post(f"{hub.http_url}/v1/models/nope/predict", json=BODY).status_code == 404
    with connect(hub.grpc_url) as grpc_hub:
        for _ in range(3):
            grpc_hub.predict("m", {"x": np.ones((1, 4), np.float32)})
        with pytest.raises(Exception, match="expected"):
            grpc_hub.predict("m", {"wrong": np.ones((1, 4), np.float32)})
    after = samples(hub)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    total = "inferencehub_requests_total"
    assert grew(total, model="m", version="2", protocol="http", code="OK") == 7
    assert grew(total, model="m", version="1", protocol="http", code="OK") == 1
    assert grew(total, model="m", version="2", protocol="grpc", code="OK") == 3
    assert grew(total, model="m", version="2", protocol="grpc", code="INVALID_ARGUMENT") == 1
    assert grew(total, model="m", version="", protocol="http", code="INVALID_ARGUMENT") == 1
    # An unknown name is counted without creating a series of its own.
    assert grew(total, model="(unknown)", version="", protocol="http", code="NOT_FOUND") == 1
    assert not any("nope" in str(labels) for _, labels in after)
    latency = "inferencehub_request_duration_seconds_count"
    assert grew(latency, model="m", version="2", protocol="http") == 7
    for split in ("gateway", "queue"):
        assert grew(f"inferencehub_{split}_duration_seconds_count", model="m", version="2") == 10
    compute = "inferencehub_compute_duration_seconds_count"
    assert grew(compute, model="m", version="2", stage="inference") == 10
    assert grew("inferencehub_batch_size_count", model="m", version="2") == 10
    # The worker's numbers, the same as the KServe statistics.
    stats = httpx.get(f"{hub.http_url}/v2/models/m/versions/2/stats").json()["model_stats"][0]
    assert (
        value(after, "inferencehub_inferences_total", model="m", version="2")
        == (stats["inference_count"])
    )
    ready = "inferencehub_model_version_ready"
    labels = {"model": "m", "version": "2", "state": "READY", "provider": "CPUExecutionProvider"}
    assert value(after, ready, **labels) == 1
    assert value(after, "inferencehub_queue_depth", model="m", version="2") == 0
    assert value(after, "inferencehub_in_flight_requests") == 0
    assert value(after, "inferencehub_worker_serving") == 1
    for role in ("supervisor", "gateway", "worker"):
        assert value(after, "inferencehub_process_resident_memory_bytes", role=role) > 10e6
        assert value(after, "inferencehub_process_cpu_seconds_total", role=role) > 0
        assert value(after, "inferencehub_process_restarts_total", role=role) == 0


def test_status_snapshot_has_processes_door_models_and_recent_traffic(hub: Hub) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(20):
            client.post(f"{hub.http_url}/v1/models/m/predict", json=BODY)
    status: dict = {}

    def history_has_them() -> bool:  # the per-second history counts them from its next tick
        status.update(httpx.get(f"{hub.http_url}/v1/status", timeout=10).json())
        v2 = next(t for t in status["traffic"] if t["version"] == "2")
        return sum(v2["requests_history"]) >= 20

    wait_for(history_has_them, what="the traffic history to count the requests")
    roles = {p["role"]: p for p in status["processes"]}
    assert set(roles) == {"supervisor", "gateway", "worker"}
    assert set(hub.children().values()) == {roles["gateway"]["pid"], roles["worker"]["pid"]}
    assert all(p["rss_bytes"] > 10e6 and p["state"] == "running" for p in roles.values())
    assert status["door"]["auth"] is False and status["door"]["max_in_flight"] == 1024
    assert [m["name"] for m in status["models"]] == ["m"]
    v2 = next(t for t in status["traffic"] if t["version"] == "2")
    assert v2["requests_per_s"] > 0 and v2["recent_latency"]["p99_ms"] > 0
    assert len(v2["requests_history"]) == 60 and sum(v2["requests_history"]) >= 20
    assert v2["avg_batch_size"] >= 1 and v2["queue_depth"] == 0


def test_a_request_id_follows_the_request_into_the_worker_log(hub: Hub) -> None:
    reply = httpx.post(
        f"{hub.http_url}/v1/models/m/predict", json=BODY, headers={"x-request-id": "trace-me-42"}
    )
    assert reply.headers["x-request-id"] == "trace-me-42"
    deadline = time.monotonic() + 10
    roles: set[str] = set()
    while time.monotonic() < deadline and roles != {"gateway", "worker"}:
        lines = [json.loads(line) for line in hub.output().splitlines() if line.startswith("{")]
        roles = {e["role"] for e in lines if e.get("request_id") == "trace-me-42"}
        time.sleep(0.2)
    assert roles == {"gateway", "worker"}
    # Every line of the supervisor's output is one JSON object naming its role.
    for line in hub.output().splitlines():
        if line.strip():
            assert json.loads(line)["role"] in {"supervisor", "gateway", "worker"}, line


def test_rate_limited_requests_are_counted_at_the_door(tmp_path: Path) -> None:
    scale_model(tmp_path / "models" / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    config = tmp_path / "hub.toml"
    config.write_text("[gateway]\nrate_limit_per_s = 5\n")
    with running_hub(tmp_path / "models", tmp_path, "--config", str(config)) as hub:
        with httpx.Client(timeout=10) as client:
            codes = [
                client.post(f"{hub.http_url}/v1/models/m/predict", json=BODY).status_code
                for _ in range(30)
            ]
        refused = codes.count(429)
        assert refused > 0
        # /metrics and /v1/status pass the same door: each asks until it has a token again.
        found = samples(hub, past_the_door(hub, "/metrics"))
        assert value(found, "inferencehub_refused_requests_total", reason="rate_limited") >= refused
        door = past_the_door(hub, "/v1/status").json()["door"]
        assert door["rate_limited"] >= refused and door["rate_limit_per_s"] == 5
