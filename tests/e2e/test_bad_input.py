"""Malformed requests thrown at the real appliance over HTTP and gRPC: always a 4xx or a
non-INTERNAL status, never a 5xx, no process restarts, and a valid request still works after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hub import Hub, running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
GOOD = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
PATHS = [
    "/v2/models/scale/infer",
    "/v1/models/scale/predict",
    "/v2/models/classifier/infer",
    "/v1/models/classifier/predict",
    "/v2/models/ints/versions/1/infer",
]

tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["x", "a", "images", "", "\udcff"]) | st.text(max_size=5),
        "datatype": st.sampled_from(["FP32", "INT64", "BYTES", "FP16", "BOOL", "X"]),
        "shape": st.lists(st.integers(-2, 10**12), max_size=4),
        "data": st.lists(st.integers(-5, 5) | st.floats() | st.text(max_size=3), max_size=8),
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_size", "timeout"]), st.integers(-10, 10**9), max_size=2
        ),
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda inputs: json.dumps({"inputs": inputs}).encode(), st.lists(tensor, max_size=3)),
)


STARTING_RSS_MB: dict[str, float] = {}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def fuzz_hub(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(repository, tmp_path_factory.mktemp("fuzz")) as hub:
        STARTING_RSS_MB.update({role: rss_mb(pid) for role, pid in hub.children().items()})
        yield hub


def restart_counts(hub: Hub) -> list[int]:
    status = httpx.get(f"{hub.http_url}/v1/status", timeout=5).json()
    return [p["restarts"] for p in status["supervisor"]["processes"]]


@FUZZ
@given(
    st.sampled_from(PATHS),
    bodies,
    st.sampled_from([None, "0", "5", "99999", "abc", "-1"]),
    st.sampled_from(["application/json", "image/png", "application/octet-stream"]),
    st.sampled_from([None, "gzip", "br"]),
)
def test_http_never_answers_5xx(
    fuzz_hub: Hub,
    path: str,
    body: bytes,
    header_length: str | None,
    content_type: str,
    encoding: str | None,
) -> None:
    headers = {"content-type": content_type}
    if header_length is not None:
        headers["inference-header-content-length"] = header_length
    if encoding is not None:
        headers["content-encoding"] = encoding
    reply = httpx.post(fuzz_hub.http_url + path, content=body, headers=headers, timeout=30)
    assert 200 <= reply.status_code < 500, (reply.status_code, reply.text)
    if reply.status_code >= 400:
        assert reply.json()["error"]


@FUZZ
@given(
    st.binary(max_size=300),
    st.sampled_from(
        [
            "/inference.GRPCInferenceService/ModelInfer",
            "/inferencehub.v1.InferenceService/Predict",
            "/inferencehub.v1.InferenceService/PredictMany",
            "/inference.GRPCInferenceService/ModelMetadata",
        ]
    ),
)
def test_grpc_random_bytes_never_internal(fuzz_hub: Hub, payload: bytes, method: str) -> None:
    with grpc.insecure_channel(fuzz_hub.grpc_target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(payload, timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED
            if exc.code() == grpc.StatusCode.INTERNAL:
                # Only protobuf's own refusal to parse may say INTERNAL; our code never does.
                assert "internal error" not in (exc.details() or ""), exc.details()


def test_nothing_restarted_and_valid_requests_still_work(fuzz_hub: Hub) -> None:
    reply = httpx.post(f"{fuzz_hub.http_url}/v2/models/scale/versions/1/infer", json=GOOD)
    assert reply.status_code == 200
    assert reply.json()["outputs"][0]["data"] == [1, 2, 3, 4]
    assert restart_counts(fuzz_hub) == [0, 0]
    for role, pid in fuzz_hub.children().items():  # memory stays bounded
        assert rss_mb(pid) - STARTING_RSS_MB[role] < 200, role
    assert "Traceback" not in fuzz_hub.output()
