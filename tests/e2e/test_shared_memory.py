"""System shared memory (the KServe/Triton extension) against a running hub, as Triton's
example clients use it: tritonclient's shared_memory utilities make the regions, HTTP goes
through tritonclient.http, gRPC through the KServe stubs (tritonclient.grpc cannot share a
process with our protobufs; tests/e2e/test_kserve_clients.py runs it in a subprocess).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import (
    InferenceServerException,
    deserialize_bytes_tensor,
    serialize_byte_tensor,
    serialized_byte_size,
)

from inferencehub.keys import KeyStore
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from inferencehub.protocol.shared_memory import SHM_DIR
from tests.hub import Hub, running_hub, wait_for
from tests.model_builders import UNTUNED, slow_batch_model, string_model, triton_simple_model

pytestmark = pytest.mark.e2e

INPUT0 = np.arange(16, dtype=np.int32).reshape(1, 16)
INPUT1 = np.full((1, 16), 3, dtype=np.int32)
STRINGS = ["0", "-7", "123456789", "42"] * 4


def simple_repository(root: Path) -> Path:
    triton_simple_model(root / "simple" / "1" / "model.onnx")
    triton_simple_model(root / "simple_string" / "1" / "model.onnx", strings=True)
    string_model(root / "text" / "1" / "model.onnx")
    slow_batch_model(root / "slow" / "1" / "model.onnx", iterations=200_000)
    (root / "slow" / "model.toml").write_text(UNTUNED + "max_batch_size = 1\n")
    return root


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = simple_repository(tmp_path_factory.mktemp("models"))
    with running_hub(root, tmp_path_factory.mktemp("logs")) as running:
        yield running


class Regions:
    """Regions made as the examples make them; all destroyed at the end."""

    def __init__(self) -> None:
        self.handles: list[object] = []
        self.tag = f"ih{os.getpid()}{secrets.token_hex(3)}"

    def make(self, name: str, size: int) -> tuple[object, str]:
        key = f"/{self.tag}_{name}"
        handle = shm.create_shared_memory_region(name, key, size)
        self.handles.append(handle)
        return handle, key

    def close(self) -> None:
        for handle in self.handles:
            shm.destroy_shared_memory_region(handle)


@pytest.fixture
def regions() -> Iterator[Regions]:
    made = Regions()
    yield made
    made.close()


def http_client(hub: Hub, key: str | None = None) -> httpclient.InferenceServerClient:
    client = httpclient.InferenceServerClient(hub.http_url.removeprefix("http://"))
    if key:  # every call of this client carries the key
        original = client._get, client._post

        def get(request_uri: str, headers: dict | None, query_params: dict | None) -> object:
            return original[0](
                request_uri, {**(headers or {}), "authorization": f"Bearer {key}"}, query_params
            )

        def post(
            request_uri: str, request_body: bytes, headers: dict | None, query_params: dict | None
        ) -> object:
            headers = {**(headers or {}), "authorization": f"Bearer {key}"}
            return original[1](request_uri, request_body, headers, query_params)

        client._get, client._post = get, post
    return client


def in_flight(hub: Hub) -> float:
    metrics = httpx.get(f"{hub.http_url}/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("inferencehub_in_flight_requests "))
    return float(line.split()[1])


def shm_inputs(names: tuple[str, str], byte_size: int, datatype: str) -> list:
    inputs = []
    for index, region in enumerate(names):
        tensor = httpclient.InferInput(f"INPUT{index}", [1, 16], datatype)
        tensor.set_shared_memory(region, byte_size)
        inputs.append(tensor)
    return inputs


def test_http_inputs_and_outputs_through_shared_memory(hub: Hub, regions: Regions) -> None:
    client = http_client(hub)
    client.unregister_system_shared_memory()
    client.unregister_cuda_shared_memory()
    size = INPUT0.nbytes
    inputs_handle, inputs_key = regions.make("inputs", size * 2)
    outputs_handle, outputs_key = regions.make("outputs", size * 2)
    shm.set_shared_memory_region(inputs_handle, [INPUT0])
    shm.set_shared_memory_region(inputs_handle, [INPUT1], offset=size)
    client.register_system_shared_memory("inputs", inputs_key, size * 2)
    client.register_system_shared_memory("outputs", outputs_key, size * 2)
    inputs = [httpclient.InferInput(f"INPUT{i}", [1, 16], "INT32") for i in (0, 1)]
    inputs[0].set_shared_memory("inputs", size)
    inputs[1].set_shared_memory("inputs", size, offset=size)
    outputs = [httpclient.InferRequestedOutput(f"OUTPUT{i}", binary_data=True) for i in (0, 1)]
    outputs[0].set_shared_memory("outputs", size)
    outputs[1].set_shared_memory("outputs", size, offset=size)

    result = client.infer("simple", inputs, outputs=outputs)

    out0, out1 = result.get_output("OUTPUT0"), result.get_output("OUTPUT1")
    # Name, datatype and shape only, as Triton answers (no parameters: Triton's C++ client
    # would look for binary_data_size in them).
    assert out0 == {"name": "OUTPUT0", "datatype": "INT32", "shape": [1, 16]}
    assert out1 == {"name": "OUTPUT1", "datatype": "INT32", "shape": [1, 16]}
    total = shm.get_contents_as_numpy(outputs_handle, np.int32, out0["shape"])
    difference = shm.get_contents_as_numpy(outputs_handle, np.int32, out1["shape"], offset=size)
    np.testing.assert_array_equal(total, INPUT0 + INPUT1)
    np.testing.assert_array_equal(difference, INPUT0 - INPUT1)

    status = client.get_system_shared_memory_status()
    assert sorted((r["name"], r["key"], r["byte_size"]) for r in status) == [
        ("inputs", inputs_key, 128),
        ("outputs", outputs_key, 128),
    ]
    assert client.get_system_shared_memory_status("inputs")[0]["offset"] == 0
    client.unregister_system_shared_memory("inputs")
    assert [r["name"] for r in client.get_system_shared_memory_status()] == ["outputs"]
    client.unregister_system_shared_memory()
    assert client.get_system_shared_memory_status() == []
    with pytest.raises(InferenceServerException, match="'inputs' is not registered"):
        client.infer("simple", inputs, outputs=outputs)


def test_grpc_inputs_and_outputs_through_shared_memory(hub: Hub, regions: Regions) -> None:
    size = INPUT0.nbytes
    inputs_handle, inputs_key = regions.make("g_inputs", size * 2)
    outputs_handle, outputs_key = regions.make("g_outputs", size * 2)
    shm.set_shared_memory_region(inputs_handle, [INPUT0, INPUT1])

    def shm_parameters(region: str, offset: int) -> dict[str, v2.InferParameter]:
        parameters = {
            "shared_memory_region": v2.InferParameter(string_param=region),
            "shared_memory_byte_size": v2.InferParameter(int64_param=size),
        }
        if offset:
            parameters["shared_memory_offset"] = v2.InferParameter(int64_param=offset)
        return parameters

    with grpc.insecure_channel(hub.grpc_target) as channel:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        for name, key in (("g_inputs", inputs_key), ("g_outputs", outputs_key)):
            stub.SystemSharedMemoryRegister(
                v2.SystemSharedMemoryRegisterRequest(name=name, key=key, byte_size=size * 2),
                timeout=10,
            )
        request = v2.ModelInferRequest(model_name="simple")
        for i in (0, 1):
            request.inputs.add(
                name=f"INPUT{i}",
                datatype="INT32",
                shape=[1, 16],
                parameters=shm_parameters("g_inputs", i * size),
            )
            request.outputs.add(name=f"OUTPUT{i}", parameters=shm_parameters("g_outputs", i * size))
        reply = stub.ModelInfer(request, timeout=10)
        assert [o.name for o in reply.outputs] == ["OUTPUT0", "OUTPUT1"]
        assert list(reply.raw_output_contents) == [b"", b""]  # positions kept, no bytes
        assert reply.outputs[1].parameters["shared_memory_offset"].int64_param == size
        assert reply.outputs[0].parameters["shared_memory_byte_size"].int64_param == size
        both = shm.get_contents_as_numpy(outputs_handle, np.int32, [2, 16])
        np.testing.assert_array_equal(both, np.concatenate([INPUT0 + INPUT1, INPUT0 - INPUT1]))

        status = stub.SystemSharedMemoryStatus(v2.SystemSharedMemoryStatusRequest(), timeout=10)
        assert status.regions["g_inputs"].key == inputs_key
        assert status.regions["g_outputs"].byte_size == size * 2
        stub.SystemSharedMemoryUnregister(v2.SystemSharedMemoryUnregisterRequest(), timeout=10)
        assert not stub.SystemSharedMemoryStatus(
            v2.SystemSharedMemoryStatusRequest(), timeout=10
        ).regions
        with pytest.raises(grpc.RpcError) as missing:
            stub.SystemSharedMemoryStatus(
                v2.SystemSharedMemoryStatusRequest(name="g_inputs"), timeout=10
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_cuda_shared_memory_is_declined_cleanly(hub: Hub) -> None:
    client = http_client(hub)
    assert client.get_cuda_shared_memory_status() == []
    client.unregister_cuda_shared_memory()
    client.unregister_cuda_shared_memory("anything")
    with pytest.raises(InferenceServerException, match="CUDA shared memory is not supported"):
        client.register_cuda_shared_memory("gpu", b"\0" * 64, 0, 1024)
    with grpc.insecure_channel(hub.grpc_target) as channel:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert not stub.CudaSharedMemoryStatus(
            v2.CudaSharedMemoryStatusRequest(), timeout=10
        ).regions
        stub.CudaSharedMemoryUnregister(v2.CudaSharedMemoryUnregisterRequest(), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CudaSharedMemoryRegister(
                v2.CudaSharedMemoryRegisterRequest(name="gpu", raw_handle=b"\0", byte_size=8),
                timeout=10,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not supported by this server" in refused.value.details()


def serialized(values: np.ndarray) -> tuple[np.ndarray, int]:
    data = serialize_byte_tensor(values)
    return data, serialized_byte_size(data)


def test_numbers_as_strings_through_shared_memory(hub: Hub, regions: Regions) -> None:
    """simple_string as simple_{http,grpc}_shm_string_client use it."""
    client = http_client(hub)
    inputs = []
    for index, values in enumerate((STRINGS, ["1"] * 16)):
        data, size = serialized(np.array([values], dtype=object))
        handle, key = regions.make(f"s_in{index}", size)
        shm.set_shared_memory_region(handle, [data])
        client.register_system_shared_memory(f"s_in{index}", key, size)
        tensor = httpclient.InferInput(f"INPUT{index}", [1, 16], "BYTES")
        tensor.set_shared_memory(f"s_in{index}", size)
        inputs.append(tensor)
    wanted = [str(int(a) + 1) for a in STRINGS]
    _, room = serialized(np.array(wanted, dtype=object))
    out_handle, out_key = regions.make("s_out", room)
    client.register_system_shared_memory("s_out", out_key, room)
    output = httpclient.InferRequestedOutput("OUTPUT0")
    output.set_shared_memory("s_out", room)
    result = client.infer("simple_string", inputs, outputs=[output])
    shape = result.get_output("OUTPUT0")["shape"]
    got = shm.get_contents_as_numpy(out_handle, np.object_, shape)
    assert [s.decode() for s in got.reshape(-1)] == wanted
    client.unregister_system_shared_memory()


def test_every_utf8_string_round_trips_exactly(hub: Hub, regions: Regions) -> None:
    """Empty, multi-byte and long strings, inline (binary and JSON) over HTTP, raw over gRPC,
    and through shared memory both ways."""
    texts = ["", "naïve café", "日本語のテキスト", "emoji 🙂 and tabs\t", "long " * 20_000]
    encoded = np.array([t.encode() for t in texts], dtype=object)
    client = http_client(hub)
    for binary in (True, False):
        tensor = httpclient.InferInput("s", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(encoded if binary else np.array(texts, dtype=object), binary)
        answer = client.infer(
            "text", [tensor], outputs=[httpclient.InferRequestedOutput("t", binary_data=binary)]
        ).as_numpy("t")
        assert [bytes(a) if binary else a.encode() for a in answer] == list(encoded), binary

    data, size = serialized(encoded)
    with grpc.insecure_channel(hub.grpc_target) as channel:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = v2.ModelInferRequest(model_name="text", raw_input_contents=[data.item()])
        request.inputs.add(name="s", datatype="BYTES", shape=[len(texts)])
        reply = stub.ModelInfer(request, timeout=30)
    assert list(deserialize_bytes_tensor(reply.raw_output_contents[0])) == list(encoded)

    in_handle, in_key = regions.make("t_in", size)
    out_handle, out_key = regions.make("t_out", size)
    shm.set_shared_memory_region(in_handle, [data])
    client.register_system_shared_memory("t_in", in_key, size)
    client.register_system_shared_memory("t_out", out_key, size)
    tensor = httpclient.InferInput("s", [len(texts)], "BYTES")
    tensor.set_shared_memory("t_in", size)
    output = httpclient.InferRequestedOutput("t")
    output.set_shared_memory("t_out", size)
    client.infer("text", [tensor], outputs=[output])
    got = shm.get_contents_as_numpy(out_handle, np.object_, [len(texts)])
    assert list(got) == list(encoded)

    # Not UTF-8: ONNX Runtime's strings cannot hold it; a clean 400, inline or in a region.
    bad, bad_size = serialized(np.array([b"\xff\xfe"], dtype=object))
    shm.set_shared_memory_region(in_handle, [bad])
    tensor = httpclient.InferInput("s", [1], "BYTES")
    tensor.set_shared_memory("t_in", bad_size)
    with pytest.raises(InferenceServerException, match="not UTF-8") as refused:
        client.infer("text", [tensor])
    assert refused.value.status() == "400"
    client.unregister_system_shared_memory()


def test_a_truncated_region_is_a_clean_error_and_the_worker_lives_on(
    hub: Hub, regions: Regions
) -> None:
    client = http_client(hub)
    size = INPUT0.nbytes
    handle, key = regions.make("shrinking", size * 2)
    shm.set_shared_memory_region(handle, [INPUT0, INPUT1])
    client.register_system_shared_memory("shrinking", key, size * 2)
    worker = hub.children()["worker"]
    os.truncate(SHM_DIR + key, 8)  # after registration, as a buggy or hostile client might
    inputs = [httpclient.InferInput(f"INPUT{i}", [1, 16], "INT32") for i in (0, 1)]
    inputs[0].set_shared_memory("shrinking", size)
    inputs[1].set_shared_memory("shrinking", size, offset=size)
    with pytest.raises(InferenceServerException, match="holds 8 bytes now") as error:
        client.infer("simple", inputs)
    assert error.value.status() == "400"
    assert hub.children()["worker"] == worker  # no SIGBUS, no restart
    plain = [httpclient.InferInput(f"INPUT{i}", [1, 16], "INT32") for i in (0, 1)]
    plain[0].set_data_from_numpy(INPUT0)
    plain[1].set_data_from_numpy(INPUT1)
    np.testing.assert_array_equal(
        client.infer("simple", plain).as_numpy("OUTPUT0"), INPUT0 + INPUT1
    )
    client.unregister_system_shared_memory()


def test_spans_and_sizes_are_checked_at_every_use(hub: Hub, regions: Regions) -> None:
    client = http_client(hub)
    _, key = regions.make("small", 64)
    client.register_system_shared_memory("small", key, 64)
    outside = shm_inputs(("small", "small"), 64, "INT32")
    outside[1].set_shared_memory("small", 64, offset=32)
    with pytest.raises(InferenceServerException, match="runs past the 64 bytes"):
        client.infer("simple", outside)
    wrong_size = shm_inputs(("small", "small"), 32, "INT32")
    with pytest.raises(InferenceServerException, match="INPUT0"):
        client.infer("simple", wrong_size)  # 32 bytes cannot hold 16 INT32
    plain = [httpclient.InferInput(f"INPUT{i}", [1, 16], "INT32") for i in (0, 1)]
    plain[0].set_data_from_numpy(INPUT0)
    plain[1].set_data_from_numpy(INPUT1)
    output = httpclient.InferRequestedOutput("OUTPUT0")
    output.set_shared_memory("small", 16)  # the answer needs 64
    with pytest.raises(InferenceServerException, match="needs 64 bytes"):
        client.infer("simple", plain, outputs=[output])
    with pytest.raises(InferenceServerException, match="already registered"):
        client.register_system_shared_memory("small", key, 64)
    with pytest.raises(InferenceServerException, match="not a POSIX shm key"):
        client.register_system_shared_memory("evil", "/../../etc/passwd", 64)
    client.unregister_system_shared_memory()


def test_unregistering_a_region_in_use_is_safe(hub: Hub, regions: Regions) -> None:
    """A slow request holds its span; unregistering meanwhile neither breaks it nor the next."""
    client = http_client(hub)
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    handle, key = regions.make("busy", x.nbytes)
    shm.set_shared_memory_region(handle, [x])
    client.register_system_shared_memory("busy", key, x.nbytes)
    tensor = httpclient.InferInput("x", [1, 4], "FP32")
    tensor.set_shared_memory("busy", x.nbytes)
    answers: list[np.ndarray] = []
    # NOTE: plain HTTP in the thread: tritonclient.http runs on gevent, whose hub is per thread,
    # and a client closed (or collected) in another thread raises from its __del__.
    body = {
        "inputs": [
            {
                "name": "x",
                "datatype": "FP32",
                "shape": [1, 4],
                "parameters": {"shared_memory_region": "busy", "shared_memory_byte_size": 16},
            }
        ]
    }

    def slow_request() -> None:
        reply = httpx.post(f"{hub.http_url}/v2/models/slow/infer", json=body, timeout=60)
        answers.append(np.array(reply.json()["outputs"][0]["data"], np.float32).reshape(1, 4))

    running = threading.Thread(target=slow_request)
    running.start()
    wait_for(lambda: in_flight(hub) == 1, 20, "the request to be in flight")
    client.unregister_system_shared_memory("busy")  # while the worker computes
    assert in_flight(hub) == 1
    running.join(timeout=60)
    assert len(answers) == 1
    np.testing.assert_allclose(answers[0], x + 200_000)
    with pytest.raises(InferenceServerException, match="'busy' is not registered"):
        client.infer("slow", [tensor])
    assert httpx.get(f"{hub.http_url}/v2/health/ready").status_code == 200


def test_regions_belong_to_the_key_that_registered_them_and_are_capped(
    tmp_path: Path, regions: Regions
) -> None:
    data = tmp_path / "data"
    store = KeyStore(data)
    alice, bob = store.create("alice"), store.create("bob")
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n[gateway]\nshm_max_regions = 2\nshm_max_bytes = 200\n')
    root = simple_repository(tmp_path / "models")
    with running_hub(root, tmp_path, "--config", str(config)) as hub:
        as_alice, as_bob = http_client(hub, alice), http_client(hub, bob)
        size = INPUT0.nbytes
        handle, key = regions.make("alices", size * 2)
        shm.set_shared_memory_region(handle, [INPUT0, INPUT1])
        with pytest.raises(InferenceServerException, match="needs an API key"):
            http_client(hub).register_system_shared_memory("alices", key, size * 2)
        as_alice.register_system_shared_memory("alices", key, size * 2)
        assert [r["name"] for r in as_alice.get_system_shared_memory_status()] == ["alices"]
        assert as_bob.get_system_shared_memory_status() == []  # not even listed
        inputs = shm_inputs(("alices", "alices"), size, "INT32")
        inputs[1].set_shared_memory("alices", size, offset=size)
        with pytest.raises(InferenceServerException, match="'alices' is not registered") as denied:
            as_bob.infer("simple", inputs)
        assert denied.value.status() == "404"
        answer = as_alice.infer("simple", inputs).as_numpy("OUTPUT0")
        np.testing.assert_array_equal(answer, INPUT0 + INPUT1)
        as_bob.unregister_system_shared_memory()  # touches bob's regions only
        assert len(as_alice.get_system_shared_memory_status()) == 1
        # Caps, per key: 200 bytes, 2 regions.
        with pytest.raises(InferenceServerException, match="the cap is 200") as capped:
            as_alice.register_system_shared_memory("more", key, size * 2)
        assert capped.value.status() == "429"
        as_alice.register_system_shared_memory("part", key, 8)
        with pytest.raises(InferenceServerException, match="the cap is 2"):
            as_alice.register_system_shared_memory("third", key, 8)
        as_bob.register_system_shared_memory("alices", key, 8)  # bob's own caps and names
