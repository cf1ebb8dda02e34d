"""Fault injection on the real appliance: killed children are restarted, clients see either a
correct answer or a clean error (never a hang or a wrong answer), and service resumes."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.hub import Hub, alive, running_hub, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
EXPECTED = [1.0, 2.0, 3.0, 4.0]
CLIENT_TIMEOUT_S = 10.0


@dataclass
class Outcome:
    started: float
    finished: float
    status: int  # 0 = transport error
    ok: bool


def hammer(hub: Hub, stop: threading.Event, outcomes: list[Outcome]) -> None:
    """One client: sequential requests until told to stop; records what each one got."""
    with httpx.Client(base_url=hub.http_url, timeout=CLIENT_TIMEOUT_S) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                reply = client.post("/v1/models/scale/versions/1/predict", json=BODY)
            except httpx.HTTPError:
                outcomes.append(Outcome(started, time.monotonic(), 0, False))
                time.sleep(0.05)
                continue
            ok = reply.status_code == 200
            if ok:
                assert reply.json()["outputs"][0]["data"] == EXPECTED, "wrong answer"
            else:
                assert reply.status_code in (503, 504), reply.text
                assert "error" in reply.json()
            outcomes.append(Outcome(started, time.monotonic(), reply.status_code, ok))
            if not ok:
                time.sleep(0.05)


# Answers that started after the first answer since the fault plus this margin, before the
# load stops: the tail that must be all successes.
TAIL_MARGIN_S = 0.5
TAIL_REQUESTS = 40


def served_again(outcomes: list[Outcome], since: float) -> bool:
    """Service is back since `since` and has answered a tail of TAIL_REQUESTS after that."""
    snapshot = list(outcomes)
    first_ok = min((o.finished for o in snapshot if o.ok and o.started > since), default=None)
    if first_ok is None:
        return False
    return sum(o.started > first_ok + TAIL_MARGIN_S for o in snapshot) >= TAIL_REQUESTS


def under_load(hub: Hub, fault, clients: int = 4) -> tuple[float, list]:
    """Run `fault()` while `clients` clients hammer the hub, and keep the load on until
    service is back and a tail of requests has been answered after it; returns the fault's
    time and the outcomes."""
    stop = threading.Event()
    outcomes: list[Outcome] = []
    threads = [threading.Thread(target=hammer, args=(hub, stop, outcomes)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(o.ok for o in list(outcomes)) >= 2 * clients, 30, "the load to flow")
        injected = time.monotonic()
        fault()
        wait_for(lambda: served_again(outcomes, injected), 30, "service to resume under load")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 5)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return injected, outcomes


def status(hub: Hub) -> dict:
    return httpx.get(f"{hub.http_url}/v1/status", timeout=5).json()


def requests_in_worker(hub: Hub) -> int:
    """Requests the worker has received and not answered yet (its own count)."""
    return sum(w["hop"]["worker_requests_held"] for w in status(hub)["workers"])


def restarts(hub: Hub, role: str) -> int:
    processes = status(hub)["supervisor"]["processes"]
    return next(p["restarts"] for p in processes if p["role"] == role)


def test_killed_worker_is_restarted_and_service_resumes(repository: Path, tmp_path: Path) -> None:
    with running_hub(repository, tmp_path) as hub:
        worker = hub.children()["worker"]
        injected, outcomes = under_load(hub, lambda: os.kill(worker, signal.SIGKILL))
        assert all(o.finished - o.started < CLIENT_TIMEOUT_S for o in outcomes)
        after = [o for o in outcomes if o.started > injected]
        first_ok = min(o.finished for o in after if o.ok)
        gap = first_ok - injected
        print(
            f"\nworker SIGKILL: service back after {gap:.2f} s; "
            f"{sum(not o.ok for o in outcomes)} clean errors of {len(outcomes)} requests"
        )
        assert gap < 8.0
        tail = [o for o in outcomes if o.started > first_ok + TAIL_MARGIN_S]
        assert tail and all(o.ok for o in tail), "service did not resume fully"
        assert hub.children()["worker"] != worker
        assert restarts(hub, "worker") == 1
        assert (
            status(hub)["supervisor"]["processes"][0]["last_exit_reason"] == "was killed by SIGKILL"
        )


def test_killed_gateway_is_restarted_and_clients_reconnect(
    repository: Path, tmp_path: Path
) -> None:
    with running_hub(repository, tmp_path) as hub:
        gateway = hub.children()["gateway"]
        injected, outcomes = under_load(hub, lambda: os.kill(gateway, signal.SIGKILL))
        after = [o for o in outcomes if o.started > injected]
        first_ok = min(o.finished for o in after if o.ok)
        print(f"\ngateway SIGKILL: clients served again after {first_ok - injected:.2f} s")
        assert first_ok - injected < 8.0
        assert hub.children()["gateway"] != gateway
        assert restarts(hub, "gateway") == 1


def test_request_in_flight_on_a_killed_worker_is_retried(repository: Path, tmp_path: Path) -> None:
    with running_hub(repository, tmp_path) as hub:
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [1], "data": [0.5]},
                {"name": "iterations", "datatype": "INT64", "shape": [], "data": 3_000_000},
            ]
        }
        result: dict[str, httpx.Response] = {}
        caller = threading.Thread(
            target=lambda: result.setdefault(
                "reply", httpx.post(f"{hub.http_url}/v1/models/slow/predict", json=body, timeout=30)
            )
        )
        caller.start()
        wait_for(lambda: requests_in_worker(hub) == 1, 20, "the request to reach the worker")
        os.kill(hub.children()["worker"], signal.SIGKILL)
        caller.join(timeout=30)
        reply = result["reply"]
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == [3_000_000.5]


def test_crash_loop_makes_up_give_up(repository: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "scale").symlink_to(repository / "scale", target_is_directory=True)
    with running_hub(models, tmp_path) as hub:
        children = list(hub.children().values())
        (models / "scale").unlink()
        models.rmdir()  # every restart of the worker now fails at once
        os.kill(hub.children()["worker"], signal.SIGKILL)
        code = hub.process.wait(timeout=60)
        assert code == 1
        assert "worker exited with code 2 and keeps crashing; giving up" in hub.output()
        assert not any(alive(pid) for pid in children)


def test_session_that_throws_fails_only_that_request(tmp_path: Path) -> None:
    from tests.model_builders import reshape_model

    reshape_model(tmp_path / "models" / "reshaper" / "1" / "model.onnx")
    with running_hub(tmp_path / "models", tmp_path) as hub:
        worker = hub.children()["worker"]

        def call(shape: list[int]) -> httpx.Response:
            body = {
                "inputs": [
                    {"name": "x", "datatype": "FP32", "shape": [4], "data": [1, 2, 3, 4]},
                    {"name": "shape", "datatype": "INT64", "shape": [2], "data": shape},
                ]
            }
            return httpx.post(f"{hub.http_url}/v2/models/reshaper/infer", json=body, timeout=10)

        failed = call([3, 3])
        assert failed.status_code in (400, 500)
        assert "Traceback" not in failed.text
        assert "error" in failed.json()
        fine = call([2, 2])
        assert fine.status_code == 200
        assert fine.json()["outputs"][0]["shape"] == [2, 2]
        assert hub.children()["worker"] == worker  # the same worker: it survived
