"""The InferenceHub client SDK: the same calls over HTTP (/v1) or gRPC (inferencehub.v1).

from inferencehub.client import connect
with connect("http://127.0.0.1:8000") as hub:
    result = hub.predict_image("efficientnet", Path("cat.jpg"))
    print(result.classifications[0][0].label)

`types` holds what both transports share, `http` and `grpc` one transport each; the gRPC one
is imported only when a grpc:// URL is used, so HTTP users never load grpc.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from inferencehub import DEFAULT_URL
from inferencehub.client.http import HttpClient
from inferencehub.client.types import (
    DEFAULT_TIMEOUT_S,
    ClassScore,
    Client,
    ClientError,
    PredictResult,
    ServerUnreachableError,
    canary_request,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_URL",
    "ClassScore",
    "Client",
    "ClientError",
    "HttpClient",
    "PredictResult",
    "ServerUnreachableError",
    "canary_request",
    "connect",
]


def connect(
    url: str = DEFAULT_URL, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Client:
    """A client for `url`: http(s)://host:port for HTTP, grpc://host:port for gRPC."""
    scheme = urlsplit(url).scheme
    if scheme == "grpc":
        # NOTE: lazy so that HTTP users skip grpc; client.grpc imports only client.types.
        from inferencehub.client.grpc import GrpcClient

        return GrpcClient(url, api_key=api_key, timeout_s=timeout_s)
    if scheme in ("http", "https"):
        return HttpClient(url, api_key=api_key, timeout_s=timeout_s)
    raise ValueError(f"unsupported URL {url!r}; use http://host:port or grpc://host:port")
