"""The door's policy, one for both protocols: API keys, model permissions and rate limits.

`Authenticator` decides; `AuthMiddleware` (HTTP, pure ASGI) and `AuthInterceptor` (gRPC) only
adapt it. The key behind a request travels in a context variable so the DataPlane can check
per-model permissions without knowing about transports.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from inferencehub.errors import (
    HubError,
    OverloadedError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from inferencehub.gateway.console import is_console
from inferencehub.gateway.http_common import error_response
from inferencehub.keys import ApiKey, KeyStore, match_key
from inferencehub.protocol.status import (
    GRPC_STATUS,
    HTTP_STATUS,
    RETRY_AFTER_S,
    RETRY_CODES,
    retry_metadata,
)

logger = logging.getLogger(__name__)

current_key: contextvars.ContextVar[ApiKey | None] = contextvars.ContextVar(
    "current_key", default=None
)
# Health stays open so probes and load balancers need no secret.
OPEN_HTTP_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
OPEN_GRPC_PREFIXES = ("/grpc.health.v1.Health/",)
RELOAD_CHECK_S = 1.0


@dataclass
class TokenBucket:
    """`rate` requests a second on average, bursts up to `burst`. Pure: time is passed in."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> float:
        """0 if a request may pass now (and counts it), else seconds until one may."""
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Authenticator:
    """Keys from the store (re-read within a second of a change), plus rate limits."""

    def __init__(self, store: KeyStore | None, global_rate_per_s: float = 0.0) -> None:
        self._store = store
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._buckets: dict[str, TokenBucket] = {}
        self._global = (
            TokenBucket(global_rate_per_s, max(global_rate_per_s, 1.0))
            if global_rate_per_s > 0
            else None
        )
        self.global_rate_per_s = global_rate_per_s
        # Refusals at the door since start, for /metrics and the status view.
        self.rate_limited = 0
        self.unauthenticated = 0
        self._refresh(force=True)

    @property
    def active_keys(self) -> int:
        self._refresh()
        return len(self._keys)

    @property
    def enabled(self) -> bool:
        self._refresh()
        return bool(self._keys)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._store is None or (not force and now - self._checked < RELOAD_CHECK_S):
            return
        self._checked = now
        try:
            info = self._store.path.stat()
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and not force:
            return
        try:
            self._keys = {k.key_id: k for k in self._store.load()}
        except HubError as exc:  # keep the last good keys; never serve open by mistake
            logger.error("cannot read API keys: %s", exc.message)
            return
        self._stamp = stamp
        logger.info("API keys: %d active", len(self._keys))

    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The key behind a request (None when no keys exist), after the rate limits.

        Raises:
            UnauthenticatedError: keys exist and none valid was presented.
            OverloadedError: a rate limit is exhausted (the message says when to retry).
        """
        try:
            return self._authenticate(authorization)
        except UnauthenticatedError:
            self.unauthenticated += 1
            raise
        except OverloadedError:
            self.rate_limited += 1
            raise

    def _authenticate(self, authorization: str | None) -> ApiKey | None:
        self._check_rate(self._global, "this server")
        self._refresh()
        if not self._keys:
            return None
        if not authorization:
            raise UnauthenticatedError(
                "this server needs an API key: send 'Authorization: Bearer <key>'"
            )
        scheme, _, token = authorization.partition(" ")
        key = match_key(self._keys, token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise UnauthenticatedError("the API key is not valid (revoked or mistyped?)")
        if key.rate_per_s:
            bucket = self._buckets.get(key.key_id)
            if bucket is None or bucket.rate != key.rate_per_s:
                bucket = self._buckets[key.key_id] = TokenBucket(
                    key.rate_per_s, max(key.rate_per_s, 1.0)
                )
            self._check_rate(bucket, f"API key '{key.name}'")
        return key

    @staticmethod
    def _check_rate(bucket: TokenBucket | None, who: str) -> None:
        if bucket is None:
            return
        wait = bucket.take(time.monotonic())
        if wait:
            raise OverloadedError(
                f"rate limit of {bucket.rate:g} requests/s for {who} reached; retry in {wait:.2f}s"
            )


def authorize_model(model: str) -> None:
    """Raises PermissionDeniedError when the request's key may not use `model`."""
    key = current_key.get()
    if key is not None and not key.may_use(model):
        raise PermissionDeniedError(f"this API key may not use model '{model}'")


def authorize_every_model() -> None:
    """Raises PermissionDeniedError when the request's key is limited to some models."""
    key = current_key.get()
    if key is not None and key.models is not None:
        raise PermissionDeniedError(
            "this API key may use only some models; this needs a key for every model"
        )


class AuthMiddleware:
    """HTTP adapter: answers 401/403/429 itself; otherwise runs the app with the key set."""

    def __init__(self, app: Any, authenticator: Authenticator) -> None:
        self._app = app
        self._auth = authenticator

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_HTTP_PATHS or is_console(scope):
            await self._app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        try:
            key = self._auth.authenticate(header.decode("latin-1") if header else None)
        except HubError as exc:
            status = HTTP_STATUS[exc.code]
            headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.code in RETRY_CODES else {}
            if status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            await error_response(status, exc.message, headers)(scope, receive, send)
            return
        token = current_key.set(key)
        try:
            await self._app(scope, receive, send)
        finally:
            current_key.reset(token)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """gRPC adapter: the same policy on the `authorization` metadata."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method or ""
        if handler is None or method.startswith(OPEN_GRPC_PREFIXES):
            return handler
        metadata = dict(details.invocation_metadata or ())
        try:
            key = self._auth.authenticate(metadata.get("authorization"))
        except HubError as exc:
            return _refusal(exc, handler)
        if key is None:
            return handler  # no keys configured: nothing to carry
        if handler.stream_unary is not None:  # an import: the key decides what it may replace
            return grpc.stream_unary_rpc_method_handler(
                _with_key(key, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_unary is None:
            return handler  # streaming (server reflection): authenticated, no model to check
        return grpc.unary_unary_rpc_method_handler(
            _with_key(key, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _with_key(key: ApiKey, inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The handler, run with the caller's key in `current_key`."""

    async def with_key(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = current_key.set(key)
        try:
            return await inner(request, context)
        finally:
            current_key.reset(token)

    return with_key


def _refusal(error: HubError, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    metadata = retry_metadata(error.code)

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(GRPC_STATUS[error.code], error.message, metadata)

    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
