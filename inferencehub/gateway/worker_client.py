"""The gateway's client of the worker over the Unix socket: deadlines, signature cache, errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferencehub.errors import HubError, WorkerUnavailableError
from inferencehub.gateway.hop import HopClient
from inferencehub.gateway.hop_session import NO_HINTS, HopHints, take_payloads
from inferencehub.protocol.status import error_from_rpc
from inferencehub.protocol.validation import missing_model_error
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONTROL_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 1.0
# A cache miss may refresh the signatures at most this often (unknown names are cheap to send).
MISS_REFRESH_INTERVAL_S = 1.0


class GrpcWorkerClient:
    """Talks to one worker; keeps the model signatures it last reported."""

    def __init__(
        self,
        address: str,
        *,
        max_message_bytes: int,
        refresh_s: float,
        retry_in_flight: bool = True,
        name: str = "worker",
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = None,
        arena_bytes: int = 0,
    ) -> None:
        """A local worker (unix://) shares an arena of `arena_bytes` (0: none) with this client,
        created in the socket's private directory where it cannot be a memfd."""
        self.name = name
        self.address = address
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # A restarted worker is back in about a second: reconnect quickly, not after
            # gRPC's default 1 s initial / 120 s maximum backoff.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if credentials is not None:
            # A remote name may stand for several workers (a headless Service's pods): spread
            # the calls over every address it resolves to, re-resolving as they change.
            options.append(("grpc.lb_policy_name", "round_robin"))
        self._channel = (
            grpc.aio.secure_channel(address, credentials, options=options)
            if credentials is not None
            else grpc.aio.insecure_channel(address, options=options)
        )
        self.outstanding = 0  # requests sent and not answered: the pool's load measure
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)
        local = address.startswith("unix://") and credentials is None
        self._hop = HopClient(
            self._channel,
            name=name,
            arena_bytes=arena_bytes if local else 0,
            arena_dir=Path(address.removeprefix("unix://")).parent if local else None,
            wait_ready=self._wait_ready if retry_in_flight else None,
        )
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._refresh_s = refresh_s
        self._models: dict[str, pb.ModelInfo] = {}
        self._refreshed_at = 0.0
        self._refresher: asyncio.Task[None] | None = None
        self._serving = False
        self._worker_hop = pb.HopStatistics()
        self._reachable = True  # as last logged: see _note_reachable

    @property
    def serving(self) -> bool:
        """The worker's health as last checked: readiness never waits on the worker."""
        return self._serving

    async def check_health(self) -> bool:
        """Ask the worker's health service (1 s deadline) and remember the answer."""
        self._serving = await self._probe_health()
        return self._serving

    async def start(self) -> None:
        """Read the signatures and health once, then follow changes in the background."""
        await self.check_health()
        with contextlib.suppress(HubError):
            await self.refresh()
        self._refresher = asyncio.create_task(self._follow(), name="worker-metadata")

    async def close(self) -> None:
        await self._hop.close()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self._channel.close()

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except HubError as exc:
                logger.debug("cannot refresh model signatures: %s", exc.message)

    async def refresh(self) -> list[pb.ModelInfo]:
        """Fetch every model's signature from the worker and cache it.

        Raises:
            WorkerUnavailableError: the worker did not answer in time.
        """
        reply = await self._call(
            self._stub.ListModels(pb.ListModelsRequest(), timeout=CONTROL_TIMEOUT_S)
        )
        self._models = {m.name: m for m in reply.models}
        self._refreshed_at = time.monotonic()
        return list(reply.models)

    def known_models(self) -> dict[str, pb.ModelInfo]:
        return self._models

    async def model(self, name: str) -> pb.ModelInfo:
        """A model's signature from the cache, refreshed once on a miss.

        Raises:
            ModelNotFoundError: the worker does not have it.
        """
        info = self._models.get(name)
        if info is None and time.monotonic() - self._refreshed_at > MISS_REFRESH_INTERVAL_S:
            await self.refresh()
            info = self._models.get(name)
        if info is None:
            raise missing_model_error(name, list(self._models))
        return info

    async def _wait_ready(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until a worker serves again: connected, models loaded."""
        if timeout_s <= 0:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    await self._channel.channel_ready()
                    if await self.check_health():
                        return True
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return False

    async def predict(
        self,
        request: pb.PredictRequest,
        timeout_s: float,
        hints: HopHints = NO_HINTS,
        payloads: Sequence[bytes | memoryview] | None = None,
    ) -> pb.PredictResponse:
        """Run a request on the worker within `timeout_s` (see HopClient.predict); without
        `payloads`, the inputs' bytes are taken out of the request's tensors.

        Raises:
            HubError: whatever the worker answered, or WorkerUnavailableError at once while
                the worker is known to be down.
        """
        if self._channel.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            raise WorkerUnavailableError("the worker is unavailable (restarting?); retry shortly")
        if payloads is None:
            payloads = take_payloads(request)
        return await self._hop.predict(request, payloads, timeout_s, hints)

    @property
    def hop(self) -> HopClient:
        return self._hop

    def hop_status(self) -> dict[str, int]:
        """The hop as this gateway sees it, and what the worker holds for its gateways (as of
        the last statistics call: /metrics and /v1/status make one before they read this)."""
        held = self._worker_hop
        return {
            **self._hop.occupancy(),
            "worker_sessions": held.sessions,
            "worker_arenas_mapped": held.arenas_mapped,
            "worker_requests_held": held.requests_held,
            "worker_slots_held": held.slots_held,
        }

    async def statistics(self, name: str, version: str) -> list[pb.VersionStatistics]:
        request = pb.ModelStatisticsRequest(name=name, version=version)
        reply = await self._call(self._stub.ModelStatistics(request, timeout=CONTROL_TIMEOUT_S))
        self._worker_hop = reply.hop
        return list(reply.versions)

    async def load_model(self, name: str, timeout_s: float) -> pb.ModelInfo:
        """(Re)load a model on the worker, then refresh the cached signatures."""
        info = await self._call(
            self._stub.LoadModel(pb.LoadModelRequest(name=name), timeout=timeout_s)
        )
        await self.refresh()
        return info

    async def import_model(
        self, chunks: AsyncIterator[pb.ImportChunk], timeout_s: float
    ) -> pb.ImportReply:
        """Stream an upload to the worker, which verifies, installs and loads it."""
        reply = await self._call(self._stub.ImportModel(chunks, timeout=timeout_s))
        await self.refresh()
        return reply

    async def set_routing(self, request: pb.SetRoutingRequest) -> pb.ModelInfo:
        """Change a model's routing on the worker, then refresh the cached signatures."""
        info = await self._call(self._stub.SetRouting(request, timeout=CONTROL_TIMEOUT_S))
        await self.refresh()
        return info

    async def unload_model(self, name: str) -> pb.ModelInfo:
        request = pb.UnloadModelRequest(name=name)
        info = await self._call(self._stub.UnloadModel(request, timeout=CONTROL_TIMEOUT_S))
        await self.refresh()
        return info

    async def _probe_health(self) -> bool:
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_S
            )
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            reply = await call
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc, "the worker")
            if isinstance(error, WorkerUnavailableError):
                self._note_reachable(False, exc.code().name)
            raise error from None
        self._note_reachable(True)
        return reply

    def _note_reachable(self, reachable: bool, why: str = "") -> None:
        """Log when the worker stops or starts answering, not on every failed call: the
        signatures are refreshed each second, so a worker that is away would flood the log."""
        if reachable == self._reachable:
            return
        self._reachable = reachable
        who = (
            f"worker {self.address}"
            if self.name == self.address
            else f"{self.name} at {self.address}"
        )
        if reachable:
            logger.info("%s answers again", who)
        else:
            logger.warning("%s does not answer (%s); retrying", who, why)
