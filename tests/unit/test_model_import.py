"""The import route's edge: declared sizes over the limit never reach a worker, and the body is
forwarded in chunks with the options on the first one only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from inferencehub.gateway.model_import import CHUNK_BYTES, rechunk
from inferencehub.gateway.rest import create_app
from inferencehub.v1 import inference_pb2 as pb


class RecordingDataPlane:
    def __init__(self) -> None:
        self.chunks: list[pb.ImportChunk] = []

    async def import_model(self, chunks: AsyncIterator[pb.ImportChunk]) -> pb.ImportReply:
        self.chunks = [chunk async for chunk in chunks]
        return pb.ImportReply(model=pb.ModelInfo(name="m"), versions=["1"], signer="SHA256:x")


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://hub")


async def test_a_declared_size_over_the_limit_is_413_before_any_worker_sees_it() -> None:
    dataplane = RecordingDataPlane()
    app = create_app(dataplane, 1 << 20, max_bundle_bytes=10)  # type: ignore[arg-type]
    async with client(app) as http:
        reply = await http.post("/v1/repository/import", content=b"x" * 11)
    assert reply.status_code == 413 and "limit is 10" in reply.json()["error"]
    assert dataplane.chunks == []


async def test_the_body_reaches_the_worker_in_chunks_with_the_options_first() -> None:
    dataplane = RecordingDataPlane()
    app = create_app(dataplane, 1 << 20)  # type: ignore[arg-type]
    body = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)
    async with client(app) as http:
        reply = await http.post("/v1/repository/import?replace=true&onnx_model=m", content=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["versions"] == ["1"] and reply.json()["model"]["name"] == "m"
    assert b"".join(c.data for c in dataplane.chunks) == body
    assert [len(c.data) for c in dataplane.chunks[:2]] == [CHUNK_BYTES, CHUNK_BYTES]
    first, *rest = dataplane.chunks
    assert first.replace and first.onnx_model == "m"
    assert not any(c.replace or c.onnx_model for c in rest)


async def test_an_empty_body_is_still_one_chunk_so_the_worker_can_say_it_is_empty() -> None:
    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""

    chunks = [c async for c in rechunk(nothing(), pb.ImportChunk(replace=True))]
    assert len(chunks) == 1 and chunks[0].replace and chunks[0].data == b""
