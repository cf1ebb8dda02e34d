"""InferenceHub operations, independent of HTTP or gRPC: validate, route, forward."""

from __future__ import annotations

import uuid

from inferencehub.errors import InvalidRequestError, WorkerUnavailableError
from inferencehub.gateway.auth import authorize_model, current_key
from inferencehub.gateway.worker_client import GrpcWorkerClient
from inferencehub.protocol.validation import resolve_version, validate_predict
from inferencehub.v1 import inference_pb2 as pb

# Header (HTTP) / metadata (gRPC) that keeps a caller on one version of a split.
ROUTING_KEY = "x-routing-key"


class DataPlane:
    """What both public APIs do; adapters only convert at the edge."""

    def __init__(
        self, worker: GrpcWorkerClient, default_timeout_s: float, max_in_flight: int = 1024
    ) -> None:
        self._worker = worker
        self._default_timeout_s = default_timeout_s
        self._max_in_flight = max_in_flight
        self._in_flight = 0

    async def ready(self) -> bool:
        """From the last health check (every second): never waits on a busy worker."""
        return self._worker.serving

    async def list_models(self) -> list[pb.ModelInfo]:
        """Every model the request's API key may use."""
        key = current_key.get()
        return [m for m in await self._worker.refresh() if key is None or key.may_use(m.name)]

    async def model(self, name: str) -> pb.ModelInfo:
        authorize_model(name)
        return await self._worker.model(name)

    async def predict(
        self, request: pb.PredictRequest, timeout_s: float | None = None, routing_key: str = ""
    ) -> pb.PredictResponse:
        """Validate against the model's signature, pin the version, run it on the worker.

        Raises:
            ModelNotFoundError: unknown model or version (naming those that exist).
            InvalidRequestError: inputs don't match the signature.
            WorkerUnavailableError: the worker is restarting or unreachable.
        """
        authorize_model(request.model_name)
        if self._in_flight >= self._max_in_flight:
            raise WorkerUnavailableError(
                f"the gateway has {self._in_flight} requests in flight (max_in_flight); "
                "retry shortly"
            )
        self._in_flight += 1
        try:
            return await self._predict(request, timeout_s, routing_key)
        finally:
            self._in_flight -= 1

    async def _predict(
        self, request: pb.PredictRequest, timeout_s: float | None, routing_key: str
    ) -> pb.PredictResponse:
        model = await self._worker.model(request.model_name)
        key = current_key.get()
        version = resolve_version(model, request.version, routing_key or (key.name if key else ""))
        validate_predict(request, version)
        request.version = version.version  # the worker runs exactly what was validated
        if not request.request_id:
            request.request_id = uuid.uuid4().hex
        return await self._worker.predict(
            request, self._timeout(request, timeout_s), version.max_queue_size
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

    async def unload_model(self, name: str) -> pb.ModelInfo:
        authorize_model(name)
        return await self._worker.unload_model(name)
