"""InferenceHub operations, independent of HTTP or gRPC: validate, route, forward."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence

from inferencehub.errors import HubError, InvalidRequestError, WorkerUnavailableError
from inferencehub.gateway.auth import authorize_every_model, authorize_model, current_key
from inferencehub.gateway.hop_session import HopHints, take_payloads
from inferencehub.gateway.pool import WorkerPool
from inferencehub.gateway.request_metrics import RequestMetrics
from inferencehub.gateway.shadow import Shadows
from inferencehub.gateway.shared_memory import (
    DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_MAX_REGION_BYTES,
    DEFAULT_MAX_REGIONS,
    Region,
    RegionRegistry,
)
from inferencehub.gateway.traffic import TrafficStats
from inferencehub.logging import current_request_id
from inferencehub.protocol.hub_status import WorkerStatus
from inferencehub.protocol.routing import resolve_version
from inferencehub.protocol.validation import SignatureCheck
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)

UNKNOWN_MODEL = "(unknown)"

# Header (HTTP) / metadata (gRPC) that keeps a caller on one version of a split.
ROUTING_KEY = "x-routing-key"


class DataPlane:
    """What both public APIs do; adapters only convert at the edge."""

    def __init__(
        self,
        worker: WorkerPool,
        default_timeout_s: float,
        max_in_flight: int = 1024,
        regions: RegionRegistry | None = None,
        metrics: RequestMetrics | None = None,
        import_timeout_s: float = 600.0,
    ) -> None:
        self._worker = worker
        self._import_timeout_s = import_timeout_s
        self.regions = regions or RegionRegistry(
            DEFAULT_MAX_REGIONS, DEFAULT_MAX_REGION_BYTES, DEFAULT_MAX_INPUT_BYTES
        )
        self._default_timeout_s = default_timeout_s
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self.traffic_stats = TrafficStats()
        self.metrics = metrics  # exported by the Observer, from the same registry
        self.shadows = Shadows(self.traffic_stats, self._shadow_answer)
        # Signatures compiled per version, valid while the cached ModelInfo is the same object
        # (the worker client replaces it when the signatures are refreshed).
        self._checks: dict[tuple[str, str], tuple[pb.ModelInfo, SignatureCheck]] = {}
        # Request ids: unique per gateway (random prefix) without a uuid4 per request.
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count(1)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    async def close(self) -> None:
        await self.shadows.close()

    async def ready(self) -> bool:
        """From the last health check (every second): never waits on a busy worker."""
        return self._worker.serving

    async def list_models(self) -> list[pb.ModelInfo]:
        """Every model the request's API key may use."""
        return self.visible(await self._worker.refresh())

    async def model(self, name: str) -> pb.ModelInfo:
        authorize_model(name)
        return await self._worker.model(name)

    def known_models(self) -> list[pb.ModelInfo]:
        """Every model as last reported (refreshed every second), for operators' views;
        callers filter by key where it matters."""
        return list(self._worker.known_models().values())

    def workers(self) -> list[WorkerStatus]:
        """Each worker: name, address, serving, requests outstanding, models."""
        return self._worker.describe()

    async def all_statistics(self) -> list[pb.VersionStatistics]:
        return await self._worker.statistics("", "")

    def visible(self, models: list[pb.ModelInfo]) -> list[pb.ModelInfo]:
        key = current_key.get()
        return [m for m in models if key is None or key.may_use(m.name)]

    async def predict(
        self,
        request: pb.PredictRequest,
        timeout_s: float | None = None,
        routing_key: str = "",
        protocol: str = "http",
        payloads: Sequence[bytes | memoryview] | None = None,
    ) -> pb.PredictResponse:
        """Validate against the model's signature, pin the version, run it on the worker.

        `payloads`: the inputs' bytes, one per `request.inputs` entry, when an adapter already
        holds them apart from the message (they then go to the worker without being copied
        into it); by default they are taken out of the tensors' `contents`.

        Raises:
            ModelNotFoundError: unknown model or version (naming those that exist).
            InvalidRequestError: inputs don't match the signature.
            WorkerUnavailableError: the worker is restarting or unreachable.
        """
        started = time.perf_counter()
        response: pb.PredictResponse | None = None
        code = "OK"
        if not request.request_id:
            request.request_id = f"{self._id_prefix}{next(self._ids):016x}"
        current_request_id.set(request.request_id)
        if payloads is None:
            payloads = take_payloads(request)
        try:
            authorize_model(request.model_name)
            if self._in_flight >= self._max_in_flight:
                raise self._busy()
            uses_regions = self.regions.resolve(_owner(), request)
            self._in_flight += 1
            try:
                response = await self._predict(
                    request, payloads, timeout_s, routing_key, mirror=not uses_regions
                )
            finally:
                self._in_flight -= 1
            return response
        except HubError as exc:
            code = exc.code.name
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception:
            code = "INTERNAL"
            raise
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                if response is not None:  # routed and answered: the labels are known
                    model, version = request.model_name, request.version
                else:
                    model, version = self._model_label(request.model_name), self._pinned(request)
                self.metrics.observe(model, version, protocol, code, elapsed, response)
            logger.debug(
                "predict %s version %s (%s): %s in %.1f ms",
                request.model_name,
                request.version or "-",
                protocol,
                code,
                elapsed * 1e3,
            )

    async def admit(
        self,
        name: str,
        version: str,
        protocol: str,
        timeout_s: float | None = None,
        routing_key: str = "",
    ) -> pb.ModelVersion:
        """The door, before a predict's payload is read or decoded: an unknown model is a 404
        and a version that cannot take the request now a 429 (admission.py), at once.

        Returns the version the request is routed to: adapters pin the request to it, so it is
        served by the version admitted (and whose signature shaped it).

        Raises:
            ModelNotFoundError, ModelNotReadyError: as predict() would.
            OverloadedError: the version's backlog is full, or it would answer too late.
            WorkerUnavailableError: the gateway's own cap on requests in flight is reached.
        """
        try:
            authorize_model(name)
            if self._in_flight >= self._max_in_flight:
                raise self._busy()
            model = await self._worker.model(name)
            key = current_key.get()
            target = resolve_version(model, version, routing_key or (key.name if key else ""))
            limit = self._default_timeout_s
            # A caller that set a deadline is refused once the queue holds 0.2 s of work (it
            # can go elsewhere sooner); one that set none waits, up to max_queue_size: refusing
            # it only makes it resend, and each resend costs the door its whole payload.
            self._worker.admit(
                model.name,
                target,
                min(limit, limit if timeout_s is None else timeout_s),
                short_queue=timeout_s is not None,
            )
            return target
        except HubError as exc:
            self.refused(name, protocol, exc)
            raise

    def register_region(self, name: str, key: str, offset: int, byte_size: int) -> None:
        self.regions.register(_owner(), name, key, offset, byte_size)

    def region_status(self, name: str = "") -> list[Region]:
        return self.regions.status(_owner(), name)

    def unregister_region(self, name: str = "") -> None:
        self.regions.unregister(_owner(), name)

    def _busy(self) -> WorkerUnavailableError:
        return WorkerUnavailableError(
            f"the gateway has {self._in_flight} requests in flight (max_in_flight); retry shortly"
        )

    def refused(self, model: str, protocol: str, error: HubError) -> None:
        """Count a predict refused by an adapter before it reached predict() (bad body, 404)."""
        if self.metrics is not None:
            self.metrics.observe(self._model_label(model), "", protocol, error.code.name, 0, None)

    def _model_label(self, name: str) -> str:
        """Known names only: a client must not be able to create a metric series per typo."""
        return name if name in self._worker.known_models() else UNKNOWN_MODEL

    def _pinned(self, request: pb.PredictRequest) -> str:
        """The version label of a failed request: the version it was routed to, if any."""
        model = self._worker.known_models().get(request.model_name)
        known = {v.version for v in model.versions} if model is not None else set()
        return request.version if request.version in known else ""

    def _signature(self, model: pb.ModelInfo, version: pb.ModelVersion) -> SignatureCheck:
        key = (model.name, version.version)
        cached = self._checks.get(key)
        if cached is not None and cached[0] is model:
            return cached[1]
        check = SignatureCheck(version)
        self._checks[key] = (model, check)
        return check

    async def _predict(
        self,
        request: pb.PredictRequest,
        payloads: Sequence[bytes | memoryview],
        timeout_s: float | None,
        routing_key: str,
        *,
        mirror: bool,
    ) -> pb.PredictResponse:
        """`mirror`: whether a shadow may get a copy (not of a request using the client's
        regions: it may reuse them as soon as it has its answer)."""
        model = await self._worker.model(request.model_name)
        key = current_key.get()
        version = resolve_version(model, request.version, routing_key or (key.name if key else ""))
        started = time.perf_counter()
        response: pb.PredictResponse | None = None
        try:
            request.version = version.version  # the worker runs exactly what was validated
            check = self._signature(model, version)
            check.check(request, _sizes(request, payloads))
            response = await self._worker.predict(
                request,
                self._timeout(request, timeout_s),
                _hints(version, check, request),
                payloads,
            )
            return response
        finally:
            self.traffic_stats.counters(model.name, version.version).primary.record(
                time.perf_counter() - started,
                response is not None,
                response.timing.batch_size if response is not None else 0,
            )
            if mirror:
                self.shadows.maybe_mirror(model, request, version.version, payloads, response)

    async def _shadow_answer(
        self,
        model: pb.ModelInfo,
        request: pb.PredictRequest,
        payloads: Sequence[bytes | memoryview],
    ) -> pb.PredictResponse:
        """Run a mirrored copy (shadow.py calls this): checked as a real request is."""
        version = resolve_version(model, request.version)
        check = self._signature(model, version)
        check.check(request, [len(p) for p in payloads])
        return await self._worker.predict(
            request, self._default_timeout_s, _hints(version, check, request), payloads
        )

    def _timeout(self, request: pb.PredictRequest, caller_s: float | None) -> float:
        """The tightest of the caller's deadline, a `timeout` parameter (microseconds, as
        Triton's clients send it) and the default; it travels to the worker as the deadline.

        Raises:
            InvalidRequestError: the timeout parameter is not a positive number.
        """
        limits = [self._default_timeout_s]
        if caller_s is not None:
            limits.append(caller_s)
        raw = request.parameters.get("timeout")
        if raw is not None:
            try:
                micros = float(raw)
            except ValueError:
                micros = -1.0
            if not micros > 0:
                raise InvalidRequestError(
                    f"parameter 'timeout' must be a positive number of microseconds, not {raw!r}"
                )
            limits.append(micros / 1e6)
        return min(limits)

    async def resolve(self, name: str, version: str) -> pb.ModelVersion:
        return (await self.model_version(name, version))[1]

    async def model_version(self, name: str, version: str) -> tuple[pb.ModelInfo, pb.ModelVersion]:
        """A model and one of its ready versions ("" = default), for metadata and config."""
        authorize_model(name)
        model = await self._worker.model(name)
        return model, resolve_version(model, version)

    async def statistics(self, name: str, version: str) -> list[pb.VersionStatistics]:
        """Raises ModelNotFoundError for an unknown model or version (the worker decides)."""
        if name:
            authorize_model(name)
            return await self._worker.statistics(name, version)
        key = current_key.get()
        everything = await self._worker.statistics(name, version)
        return [s for s in everything if key is None or key.may_use(s.name)]

    async def load_model(self, name: str) -> pb.ModelInfo:
        authorize_model(name)
        return await self._worker.load_model(name, self._default_timeout_s)

    async def set_routing(self, request: pb.SetRoutingRequest) -> pb.ModelInfo:
        """Raises InvalidRequestError (the old policy stays) or ModelNotFoundError."""
        authorize_model(request.name)
        return await self._worker.set_routing(request)

    async def traffic(self, name: str) -> list[pb.VersionTraffic]:
        """Per-version traffic ("" = every model the API key may use)."""
        if name:
            authorize_model(name)
            await self._worker.model(name)  # NOT_FOUND naming the models for a typo
            return self.traffic_stats.to_proto(name)
        key = current_key.get()
        return [t for t in self.traffic_stats.to_proto() if key is None or key.may_use(t.name)]

    async def import_model(self, chunks: AsyncIterator[pb.ImportChunk]) -> pb.ImportReply:
        authorize_every_model()  # the upload names its model only inside, and may replace any
        return await self._worker.import_model(chunks, self._import_timeout_s)

    async def unload_model(self, name: str) -> pb.ModelInfo:
        authorize_model(name)
        return await self._worker.unload_model(name)


def _owner() -> str | None:
    """Whose shared-memory regions a request sees: its API key's, or everyone's (no keys)."""
    key = current_key.get()
    return key.key_id if key is not None else None


def _sizes(request: pb.PredictRequest, payloads: Sequence[bytes | memoryview]) -> list[int]:
    """Each input's byte count, wherever its bytes are."""
    return [
        t.shared_memory.byte_size if t.HasField("shared_memory") else len(p)
        for t, p in zip(request.inputs, payloads, strict=True)
    ]


def _hints(version: pb.ModelVersion, check: SignatureCheck, request: pb.PredictRequest) -> HopHints:
    return HopHints(
        max_backlog=version.max_queue_size,
        instances=version.instances,
        output_bytes=check.output_bytes(request),
    )
