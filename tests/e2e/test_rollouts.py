"""Shadow traffic and automatic canaries on the real appliance, under load.

The shadow never changes an answer and a failing shadow never fails a request; a canary ramps,
promotes or rolls back by itself while clients keep sending, and no request is dropped by the
switch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import grpc
import httpx
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from inferencehub.client import connect
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from tests.hub import Hub, running_hub, wait_for
from tests.model_builders import UNTUNED, save_model, scale_model, slow_batch_model

pytestmark = pytest.mark.e2e

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def failing_model(path: Path) -> Path:
    """Same signature as scale_model (x FP32 [N, 4] -> y), but every run throws: y is x
    reshaped to 3 elements."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    shape = numpy_helper.from_array(np.array([3], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "failing", [x], [y], [shape]
    )
    return save_model(graph, path)


def run_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferencehub", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def predict(hub: Hub, client: httpx.Client, key: str = "") -> httpx.Response:
    headers = {"x-routing-key": key} if key else {}
    return client.post(f"{hub.http_url}/v1/models/m/predict", json=BODY, headers=headers)


class Answer(NamedTuple):
    status: int
    version: str
    first: float  # the first output value: the factor of the version that computed it
    sent: float  # time.monotonic() when the request was sent


@contextmanager
def load(hub: Hub, threads: int = 3) -> Iterator[list[Answer]]:
    """Clients sending requests (with routing keys) until the block ends: an Answer per
    request, all of them; none may be lost."""
    seen: list[Answer] = []
    stop = threading.Event()

    def client_loop(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not stop.is_set():
                sent = time.monotonic()
                reply = predict(hub, client, f"user-{worker}-{i % 50}")
                first = reply.json()["outputs"][0]["data"][0] if reply.status_code == 200 else 0
                version = reply.headers.get("x-model-version", "")
                seen.append(Answer(reply.status_code, version, first, sent))
                i += 1

    pool = [threading.Thread(target=client_loop, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in pool:
            thread.join(timeout=60)


def canary_state(hub: Hub) -> dict:
    return httpx.get(f"{hub.http_url}/v1/models/m", timeout=5).json()["routing"].get("canary", {})


def traffic(hub: Hub) -> dict[str, dict]:
    versions = httpx.get(f"{hub.http_url}/v1/models/m/traffic", timeout=5).json()["versions"]
    return {t["version"]: t for t in versions}


def test_shadow_answers_are_recorded_never_returned(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    scale_model(root / "m" / "2" / "model.onnx", [2, 2, 2, 2])
    failing_model(root / "m" / "3" / "model.onnx")
    (root / "m" / "model.toml").write_text(UNTUNED + "default_version = 1\n")
    with running_hub(root, tmp_path) as hub:
        url = ["--url", hub.http_url]
        mirrored = run_cli("route", "m", "--shadow", "2:100%", "--json", *url)
        assert mirrored.returncode == 0, mirrored.stderr
        assert json.loads(mirrored.stdout)["routing"]["shadow"] == {"version": "2", "fraction": 1}
        with httpx.Client(timeout=30) as client:
            replies = [predict(hub, client) for _ in range(30)]
        assert all(r.status_code == 200 for r in replies)
        assert {r.headers["x-model-version"] for r in replies} == {"1"}
        assert all(r.json()["outputs"][0]["data"] == [1, 1, 1, 1] for r in replies)

        # At most 4 shadows run at once; on a loaded box more of the 30 are dropped, not lost.
        def accounted(version: str) -> int:
            shown = traffic(hub)[version]
            return shown["shadow_requests"] + shown["shadow_dropped"]

        wait_for(lambda: accounted("2") == 30, 20, "every shadow run or dropped")
        seen = traffic(hub)
        assert seen["2"]["shadow_requests"] >= 1
        assert seen["1"]["requests"] == 30 and seen["1"]["errors"] == 0
        assert seen["2"]["requests"] == 0  # shadows are not traffic of their own version
        # Every shadow that ran gave other numbers (x2): each is counted as a mismatch.
        assert seen["2"]["shadow_mismatches"] == seen["2"]["shadow_requests"]
        assert seen["2"]["shadow_requests"] + seen["2"]["shadow_dropped"] == 30

        # A shadow that fails every time fails no request; the gRPC SDK sets it.
        with connect(hub.grpc_url) as hub_grpc:
            hub_grpc.set_routing("m", split={"1": 100}, shadow={"version": "3", "fraction": 1.0})
            results = [hub_grpc.predict("m", {"x": np.ones((1, 4), np.float32)}) for _ in range(20)]
            assert {r.version for r in results} == {"1"}
            assert all(r.outputs["y"].tolist() == [[1, 1, 1, 1]] for r in results)
            wait_for(lambda: accounted("3") == 20, 20, "every failing shadow run or dropped")
            by_grpc = {t["version"]: t for t in hub_grpc.traffic("m")}
        assert by_grpc["3"]["shadow_errors"] == by_grpc["3"]["shadow_requests"]
        assert by_grpc["1"]["errors"] == 0
        # KServe gRPC requests are routed, counted and mirrored the same way.
        with grpc.insecure_channel(hub.grpc_target) as channel:
            stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
            request = v2.ModelInferRequest(
                model_name="m",
                inputs=[
                    v2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])
                ],
                raw_input_contents=[np.ones((1, 4), np.float32).tobytes()],
            )
            answers = [stub.ModelInfer(request, timeout=10) for _ in range(10)]
        assert {a.model_version for a in answers} == {"1"}
        assert all(
            np.frombuffer(a.raw_output_contents[0], np.float32).tolist() == [1, 1, 1, 1]
            for a in answers
        )
        wait_for(
            lambda: (
                traffic(hub)["3"]["shadow_requests"] + traffic(hub)["3"]["shadow_dropped"] == 30
            ),
            10,
            "KServe gRPC requests mirrored",
        )
        assert traffic(hub)["1"]["requests"] == 60
        shown = run_cli("route", "m", *url)
        assert "mirrored to 3" in shown.stdout
        assert run_cli("route", "m", "--no-shadow", "--json", *url).returncode == 0
        assert "shadow" not in httpx.get(f"{hub.http_url}/v1/models/m").json()["routing"]


def test_canary_ramps_and_promotes_under_load_without_dropping(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    scale_model(root / "m" / "2" / "model.onnx", [2, 2, 2, 2])
    (root / "m" / "model.toml").write_text(UNTUNED + "default_version = 1\n")
    with running_hub(root, tmp_path) as hub, load(hub) as seen:
        wait_for(lambda: len(seen) > 20, 20, "load")
        rollout = run_cli(
            "route", "m", "--canary", "2", "--ramp", "10,50,100", "--every", "1s",
            "--min-requests", "5", "--max-p99-ratio", "1000", "--wait", "--json",
            "--url", hub.http_url,
            timeout_s=120,
        )  # fmt: skip
        assert rollout.returncode == 0, rollout.stdout + rollout.stderr
        shown = json.loads(rollout.stdout)
        assert shown["routing"]["canary"]["state"] == "PROMOTED"
        assert shown["routing"]["split"] == {"2": 100}
        assert shown["routing"]["labels"] == {"stable": "2"}
        promoted_at, promoted = len(seen), time.monotonic()
        wait_for(lambda: len(seen) > promoted_at + 30, 20, "load after the promotion")
    statuses = Counter(a.status for a in seen)
    assert statuses == {200: len(seen)}, statuses  # nothing dropped while the routes moved
    # Each answer is the one of the version that says it served it.
    assert all(a.first == float(a.version) for a in seen)
    assert {a.version for a in seen if a.sent > promoted} == {"2"}  # sent after: all to 2
    assert {a.version for a in seen[:promoted_at]} == {"1", "2"}


def test_canary_rolls_back_on_latency_under_load_without_dropping(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    slow_batch_model(root / "m" / "2" / "model.onnx", iterations=30_000)  # y = x + 30000, slow
    (root / "m" / "model.toml").write_text(UNTUNED + "default_version = 1\n")
    with running_hub(root, tmp_path) as hub, load(hub) as seen:
        wait_for(lambda: len(seen) > 20, 20, "load")
        with connect(hub.grpc_url) as hub_grpc:
            started = hub_grpc.start_canary(
                "m", "2", ramp=[30, 100], every_s=60, max_p99_ratio=2.0, min_requests=5
            )
        assert started["routing"]["canary"]["state"] == "RUNNING"
        assert started["routing"]["split"] == {"1": 70, "2": 30}
        wait_for(lambda: canary_state(hub).get("state") == "ROLLED_BACK", 60, "the rollback")
        ended = httpx.get(f"{hub.http_url}/v1/models/m").json()["routing"]
        rolled_back_at, rolled_back = len(seen), time.monotonic()
        wait_for(lambda: len(seen) > rolled_back_at + 30, 20, "load after the rollback")
    assert "p99" in ended["canary"]["reason"], ended
    assert ended["split"] == {"1": 100} and ended["labels"] == {"stable": "1"}
    assert Counter(a.status for a in seen) == {200: len(seen)}
    # Requests sent once the rollback showed all went to 1 (slow ones sent before may end later).
    assert {a.version for a in seen if a.sent > rolled_back} == {"1"}
    assert "2" in {a.version for a in seen[:rolled_back_at]}
    assert "rolled back" in hub.output()  # logged, with the reason


def test_canary_rolls_back_at_once_on_errors_and_survives_in_status(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    failing_model(root / "m" / "2" / "model.onnx")
    (root / "m" / "model.toml").write_text(UNTUNED + "default_version = 1\n")
    with running_hub(root, tmp_path) as hub:
        url = ["--url", hub.http_url]
        refused = run_cli("route", "m", "--canary", "1", *url)
        assert refused.returncode == 1 and "both 1" in refused.stderr
        bad_ramp = run_cli("route", "m", "--canary", "2", "--ramp", "50,10", *url)
        assert bad_ramp.returncode == 1 and "ascending" in bad_ramp.stderr
        started = run_cli(
            "route", "m", "--canary", "2", "--ramp", "50,100", "--every", "10m",
            "--max-error-rate", "1%", "--json", *url,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        with httpx.Client(timeout=30) as client:
            statuses = Counter(predict(hub, client).status_code for _ in range(40))
            wait_for(lambda: canary_state(hub).get("state") == "ROLLED_BACK", 10, "rollback")
            after = [predict(hub, client) for _ in range(20)]
        assert sum(n for code, n in statuses.items() if code != 200) >= 1  # the canary fails
        assert all(r.status_code == 200 and r.headers["x-model-version"] == "1" for r in after)
        state = canary_state(hub)
        assert "error rate" in state["reason"] and "budget of 1.0%" in state["reason"]
        shown = run_cli("route", "m", *url)
        assert "rolled back" in shown.stdout and "error rate" in shown.stdout
        status = httpx.get(f"{hub.http_url}/v1/status").json()
        assert {t["version"] for t in status["traffic"] if t["name"] == "m"} == {"1", "2"}
        assert next(t for t in status["traffic"] if t["version"] == "2")["errors"] >= 1
        frame = run_cli("status", *url)
        assert frame.returncode == 0, frame.stderr
        assert "m: canary 2 vs 1: rolled back: error rate" in frame.stdout.replace("\n", " ")
        snapshot = json.loads(run_cli("status", "--json", *url).stdout)
        assert snapshot["models"][0]["routing"]["canary"]["state"] == "ROLLED_BACK"
        assert {p["role"] for p in snapshot["supervisor"]["processes"]} == {"worker", "gateway"}
