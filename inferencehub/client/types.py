"""What both SDK transports share: results, errors, defaults and the `Client` protocol.

Its own module so that the transports import it and not each other nor the package: the gRPC
transport is loaded only for grpc:// URLs, and HTTP users never pay for grpc.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

DEFAULT_TIMEOUT_S = 60.0


class ClientError(Exception):
    """The server refused or failed a call; `status` is the HTTP code or gRPC status name."""

    def __init__(self, status: int | str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ServerUnreachableError(ClientError):
    """No server answered at the URL."""


@dataclass(frozen=True, slots=True)
class ClassScore:
    index: int
    label: str
    score: float


@dataclass(frozen=True, slots=True)
class PredictResult:
    model_name: str
    version: str
    request_id: str
    outputs: dict[str, np.ndarray]
    classifications: list[list[ClassScore]]
    timing: dict[str, float]
    latency_ms: float = field(default=0.0)


class Client(Protocol):
    """What both transports offer; the CLI is written against this."""

    def ready(self) -> bool: ...
    def models(self) -> list[dict[str, Any]]: ...
    def model(self, name: str) -> dict[str, Any]: ...
    def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        version: str = "",
        outputs: Sequence[str] = (),
    ) -> PredictResult: ...
    def predict_image(
        self, model: str, image: bytes | Path, version: str = ""
    ) -> PredictResult: ...
    def load_model(self, name: str) -> None: ...
    def set_routing(
        self,
        name: str,
        split: Mapping[str, float] | None = None,
        labels: Mapping[str, str] | None = None,
        sticky: bool = True,
        reset: bool = False,
        shadow: Mapping[str, Any] | None = None,
        canary: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def start_canary(self, name: str, version: str, **budgets: Any) -> dict[str, Any]: ...
    def traffic(self, name: str = "") -> list[dict[str, Any]]: ...
    def served_counts(self, name: str) -> dict[str, int]: ...
    def unload_model(self, name: str) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(self, *exc: object) -> None: ...


def canary_request(
    version: str,
    *,
    ramp: Sequence[float] = (5, 25, 50, 100),
    every_s: float = 120.0,
    max_error_rate: float = 0.01,
    max_p99_ratio: float = 1.5,
    min_requests: int = 20,
    baseline: str = "",
) -> dict[str, Any]:
    """A new automatic rollout of `version` (baseline "" = the stable label, else the default)."""
    return {
        "version": version,
        "baseline": baseline,
        "ramp": list(ramp),
        "every_s": every_s,
        "max_error_rate": max_error_rate,
        "max_p99_ratio": max_p99_ratio,
        "min_requests": min_requests,
    }


def image_bytes(image: bytes | Path) -> bytes:
    """An image given as bytes or as a file, as bytes."""
    return image.read_bytes() if isinstance(image, Path) else image
