"""The gateway-worker hop (worker in-process on a real Unix socket, the gateway's real client):
one stream per session, many requests per message, tensor bytes through the shared-memory
arena or inline, and every request gets exactly its own answer or its own error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest

from inferencehub.errors import (
    DeadlineExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    WorkerUnavailableError,
)
from inferencehub.gateway.hop_session import INLINE_MAX_BYTES, HopHints
from inferencehub.gateway.worker_client import GrpcWorkerClient
from inferencehub.protocol.arena import ALIGN, MIN_ARENA_BYTES, SharedArena
from inferencehub.protocol.tensors import tensor_from_numpy, tensor_to_numpy
from inferencehub.v1 import hop_pb2 as hop
from inferencehub.v1 import hop_pb2_grpc, inference_pb2_grpc
from inferencehub.v1 import inference_pb2 as pb
from tests.integration.test_worker import running_worker
from tests.model_builders import UNTUNED, scale_model, slow_batch_model

FACTORS = np.array([1, 2, 3, 4], np.float32)
BIG_ROWS = 4096  # 64 KiB of FP32 [N, 4]: well over INLINE_MAX_BYTES, so it takes a slot


@pytest.fixture(scope="module")
def hop_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hop")
    scale_model(root / "scale" / "1" / "model.onnx", [1.0, 2.0, 3.0, 4.0])
    scale_model(root / "scale" / "2" / "model.onnx", [10.0, 20.0, 30.0, 40.0])
    (root / "scale" / "model.toml").write_text(UNTUNED + "max_batch_size = 1000000\n")
    # A quarter-MiB request (and as much output) that takes a while: fills a 1 MiB arena.
    slow_batch_model(root / "slowbig" / "1" / "model.onnx", 2000)
    (root / "slowbig" / "model.toml").write_text(UNTUNED + "[batching]\nenabled = false\n")
    # Ten times slower (~0.1-0.3 s a run): a request surely outlives a 10 ms deadline, and
    # several are still held when the gateway's stream dies, on a fast machine too.
    slow_batch_model(root / "slowerbig" / "1" / "model.onnx", 20000)
    (root / "slowerbig" / "model.toml").write_text(UNTUNED + "[batching]\nenabled = false\n")
    return root


def scale_request(x: np.ndarray, version: str = "1") -> pb.PredictRequest:
    return pb.PredictRequest(
        model_name="scale", version=version, inputs=[tensor_from_numpy("x", x)]
    )


@asynccontextmanager
async def hop_client(
    repo: Path, uds_dir: Path, arena_bytes: int = 64 << 20, **options: object
) -> AsyncIterator[tuple[GrpcWorkerClient, inference_pb2_grpc.InferenceServiceStub]]:
    address = f"unix://{uds_dir}/w.sock"
    async with running_worker(repo, address) as channel:
        client = GrpcWorkerClient(
            address, max_message_bytes=64 << 20, refresh_s=60, arena_bytes=arena_bytes, **options
        )
        try:
            yield client, inference_pb2_grpc.InferenceServiceStub(channel)
        finally:
            await client.close()


async def worker_holds(stub: inference_pb2_grpc.InferenceServiceStub) -> pb.HopStatistics:
    return (await stub.ModelStatistics(pb.ModelStatisticsRequest())).hop


async def offer_arena(
    channel: grpc.aio.Channel, arena: SharedArena
) -> tuple[object, hop.HopResults]:
    """Open a hop stream as a gateway does, offering `arena`; the call and the hello reply."""
    call = hop_pb2_grpc.WorkerHopStub(channel).Exchange()
    offer = hop.ArenaOffer(path=arena.path, size=arena.size, arena_id=arena.arena_id)
    await call.write(hop.HopRequests(hello=hop.HopHello(arena=offer)))
    return call, await call.read()


async def eventually(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_concurrent_requests_share_messages_and_keep_their_own_results(
    hop_repo: Path, uds_dir: Path
) -> None:
    async with hop_client(hop_repo, uds_dir) as (client, _):
        inputs = [np.full((1, 4), float(i), np.float32) for i in range(40)]
        bad = pb.PredictRequest(
            model_name="scale",
            version="1",
            inputs=[tensor_from_numpy("x", np.zeros((1, 3), np.float32))],
        )
        missing = pb.PredictRequest(model_name="nope", version="1")
        results = await asyncio.gather(
            *(client.predict(scale_request(x), 10) for x in inputs[:20]),
            client.predict(bad, 10),
            client.predict(missing, 10),
            *(client.predict(scale_request(x), 10) for x in inputs[20:]),
            return_exceptions=True,
        )
        good = results[:20] + results[22:]
        for x, reply in zip(inputs, good, strict=True):
            assert isinstance(reply, pb.PredictResponse), reply
            np.testing.assert_array_equal(tensor_to_numpy(reply.outputs[0]), x * FACTORS)
        assert isinstance(results[20], InvalidRequestError)
        assert "expected FP32 [-1, 4]" in results[20].message
        assert isinstance(results[21], ModelNotFoundError)
        stats = client.hop.occupancy()
        assert stats["requests_sent"] == 42
        assert stats["messages_sent"] < 20  # they travelled together
        assert stats["sessions_opened"] == 1


async def test_large_tensors_cross_in_the_arena_small_ones_inline_both_exact(
    hop_repo: Path, uds_dir: Path
) -> None:
    rng = np.random.default_rng(1)
    big = rng.standard_normal((BIG_ROWS, 4)).astype(np.float32)
    small = rng.standard_normal((2, 4)).astype(np.float32)
    assert big.nbytes > INLINE_MAX_BYTES > small.nbytes
    async with hop_client(hop_repo, uds_dir) as (client, stub):
        big_reply, small_reply = await asyncio.gather(
            # The DataPlane reserves room for outputs whose size the signature fixes.
            client.predict(scale_request(big), 10, HopHints(output_bytes=big.nbytes)),
            client.predict(scale_request(small), 10, HopHints(output_bytes=small.nbytes)),
        )
        expected = big * FACTORS  # what ONNX Runtime's Mul computes, bit for bit
        assert tensor_to_numpy(big_reply.outputs[0]).tobytes() == expected.tobytes()
        assert tensor_to_numpy(small_reply.outputs[0]).tobytes() == (small * FACTORS).tobytes()
        stats = client.hop.occupancy()
        assert (stats["arena_requests"], stats["inline_requests"]) == (1, 1)
        assert stats["arena_slots"] == 0 and stats["arena_used_bytes"] == 0  # freed on answer
        assert stats["arena_high_water_bytes"] >= big.nbytes * 2  # inputs and outputs
        held = await worker_holds(stub)
        assert (held.sessions, held.arenas_mapped, held.slots_held) == (1, 1, 0)


async def test_no_request_ever_sees_another_requests_bytes(hop_repo: Path, uds_dir: Path) -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 3 * BIG_ROWS, 150)
    inputs = [rng.standard_normal((int(n), 4)).astype(np.float32) for n in sizes]
    async with hop_client(hop_repo, uds_dir) as (client, stub):

        async def one(i: int, x: np.ndarray) -> None:
            await asyncio.sleep(float(rng.random()) / 100)
            version = "1" if i % 3 else "2"
            reply = await client.predict(scale_request(x, version), 30)
            factors = FACTORS * (1 if version == "1" else 10)
            assert reply.version == version
            assert tensor_to_numpy(reply.outputs[0]).tobytes() == (x * factors).tobytes()

        await asyncio.gather(*(one(i, x) for i, x in enumerate(inputs)))
        stats = client.hop.occupancy()
        assert stats["arena_requests"] > 50 and stats["inline_requests"] > 0
        assert stats["arena_slots"] == 0 and stats["arena_used_bytes"] == 0
        assert (await worker_holds(stub)).requests_held == 0


async def test_a_full_arena_refuses_at_once_and_recovers(hop_repo: Path, uds_dir: Path) -> None:
    x = np.zeros((1, 65536), np.float32)  # 256 KiB in, 256 KiB out: two fill 1 MiB
    request = lambda: pb.PredictRequest(  # noqa: E731
        model_name="slowbig", version="1", inputs=[tensor_from_numpy("x", x)]
    )
    async with hop_client(hop_repo, uds_dir, arena_bytes=MIN_ARENA_BYTES) as (client, _):
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.predict(request(), 30) for _ in range(4)), return_exceptions=True
        )
        answered = [r for r in results if isinstance(r, pb.PredictResponse)]
        refused = [r for r in results if isinstance(r, OverloadedError)]
        assert answered and refused and len(answered) + len(refused) == 4
        assert "arena to the worker is full" in refused[0].message
        assert np.all(tensor_to_numpy(answered[0].outputs[0]) == 2000)
        assert time.monotonic() - started < 20
        stats = client.hop.occupancy()
        assert stats["arena_refusals"] == len(refused) and stats["arena_slots"] == 0
        again = await client.predict(request(), 30)  # the memory came back
        assert np.all(tensor_to_numpy(again.outputs[0]) == 2000)


async def test_a_request_larger_than_the_arena_travels_inline(
    hop_repo: Path, uds_dir: Path
) -> None:
    x = np.arange(4 * 131072, dtype=np.float32).reshape(-1, 4)  # 2 MiB
    async with hop_client(hop_repo, uds_dir, arena_bytes=MIN_ARENA_BYTES) as (client, _):
        reply = await client.predict(scale_request(x), 30)
        assert tensor_to_numpy(reply.outputs[0]).tobytes() == (x * FACTORS).tobytes()
        assert client.hop.occupancy()["inline_requests"] == 1


async def test_a_slot_is_kept_until_the_worker_lets_go_even_after_the_deadline(
    hop_repo: Path, uds_dir: Path
) -> None:
    x = np.zeros((1, 65536), np.float32)
    request = pb.PredictRequest(
        model_name="slowerbig", version="1", inputs=[tensor_from_numpy("x", x)]
    )
    async with hop_client(hop_repo, uds_dir) as (client, stub):
        with pytest.raises(DeadlineExceededError, match="deadline"):
            await client.predict(request, 0.01)
        # The caller is gone; the worker may still be reading the slot.
        assert client.hop.occupancy()["arena_slots"] == 1

        async def all_free() -> bool:
            return client.hop.occupancy()["arena_slots"] == 0

        await eventually(all_free)
        assert (await worker_holds(stub)).slots_held == 0


async def test_when_the_gateway_goes_the_worker_lets_go_of_its_slots(
    hop_repo: Path, uds_dir: Path
) -> None:
    x = np.zeros((1, 65536), np.float32)
    # A killed gateway sends nothing again: without retries the worker's release is not
    # hidden behind the same requests coming back on a new session (several slow runs).
    async with hop_client(hop_repo, uds_dir, retry_in_flight=False) as (client, stub):
        calls = [
            asyncio.ensure_future(
                client.predict(
                    pb.PredictRequest(
                        model_name="slowerbig", version="1", inputs=[tensor_from_numpy("x", x)]
                    ),
                    30,
                )
            )
            for _ in range(5)
        ]

        async def holding() -> bool:
            return (await worker_holds(stub)).slots_held >= 3

        await eventually(holding)
        session = client.hop._session
        assert session is not None
        session.call.cancel()  # the stream dies as it does when the gateway is killed

        async def released() -> bool:
            held = await worker_holds(stub)
            return (held.sessions, held.arenas_mapped, held.slots_held) == (0, 0, 0)

        await eventually(released)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, WorkerUnavailableError)]
        answered = [o for o in outcomes if isinstance(o, pb.PredictResponse)]
        assert len(failed) >= 3 and len(failed) + len(answered) == len(outcomes), outcomes


async def test_a_restarted_worker_gets_a_new_session_and_a_new_arena(
    hop_repo: Path, uds_dir: Path
) -> None:
    address = f"unix://{uds_dir}/w.sock"
    x = np.ones((BIG_ROWS, 4), np.float32)
    client = GrpcWorkerClient(
        address, max_message_bytes=64 << 20, refresh_s=60, arena_bytes=64 << 20
    )
    try:
        async with running_worker(hop_repo, address):
            await client.predict(scale_request(x), 10)
            first = client.hop._session
            assert first is not None and first.arena is not None
            first_id = first.arena.arena_id

        async def ended() -> bool:  # its stop ended the stream (one never ends by itself)
            return first.broken

        await eventually(ended)
        async with running_worker(hop_repo, address):

            async def serving() -> bool:
                return await client.check_health()

            await eventually(serving)
            reply = await client.predict(scale_request(x), 10)
            assert tensor_to_numpy(reply.outputs[0]).tobytes() == (x * FACTORS).tobytes()
            second = client.hop._session
            assert second is not None and second.arena is not None
            assert second.arena.arena_id != first_id
            stats = client.hop.occupancy()
            assert stats["sessions_opened"] == 2 and stats["arena_slots"] == 0
    finally:
        await client.close()


async def test_the_worker_refuses_handles_that_do_not_match(hop_repo: Path, uds_dir: Path) -> None:
    address = f"unix://{uds_dir}/w.sock"
    arena = SharedArena.create(MIN_ARENA_BYTES, uds_dir)
    x = np.ones((2, 4), np.float32)
    try:
        async with running_worker(hop_repo, address) as channel:
            call, reply = await offer_arena(channel, arena)
            assert reply.hello.arena_mapped
            arena.open_slot(ALIGN, 9, 1024)
            arena.write(2 * ALIGN, x.tobytes())
            bare = pb.PredictRequest(
                model_name="scale",
                version="1",
                inputs=[pb.Tensor(name="x", datatype="FP32", shape=[2, 4])],
            )
            span = hop.Span(offset=2 * ALIGN, length=x.nbytes)
            cases = {
                1: dict(slot=ALIGN, generation=8, inputs=[span]),  # stale generation
                2: dict(slot=ALIGN, generation=9, inputs=[hop.Span(offset=ALIGN, length=32)]),
                3: dict(slot=arena.size, generation=9, inputs=[span]),  # outside the arena
                4: dict(slot=ALIGN, generation=9, inputs=[span]),  # the one valid handle
            }
            message = hop.HopRequests(
                requests=[hop.HopRequest(tag=t, request=bare, **c) for t, c in cases.items()]
            )
            await call.write(message)
            results: dict[int, hop.HopResult] = {}
            while len(results) < 4:
                for result in (await call.read()).results:
                    results[result.tag] = result
            for tag in (1, 2, 3):
                assert results[tag].error.code == grpc.StatusCode.INTERNAL.value[0]
            assert "stale handle" in results[1].error.message
            assert "outside its slot" in results[2].error.message
            assert "out of bounds" in results[3].error.message
            answer = results[4].response
            assert np.frombuffer(answer.outputs[0].contents, np.float32).tolist() == (
                (x * FACTORS).ravel().tolist()
            )
            call.cancel()
    finally:
        arena.close()


async def test_a_worker_on_tcp_maps_no_arena(hop_repo: Path, uds_dir: Path) -> None:
    from tests.hub import free_tcp_port

    address = f"127.0.0.1:{free_tcp_port()}"
    arena = SharedArena.create(MIN_ARENA_BYTES, uds_dir)
    try:
        async with running_worker(hop_repo, address) as channel:
            call, reply = await offer_arena(channel, arena)
            assert not reply.hello.arena_mapped
            assert "TCP" in reply.hello.error
            call.cancel()
    finally:
        arena.close()
