"""What both SDK transports share: results, errors, defaults and the `Client` protocol.

Its own module so that the transports import it and not each other nor the package: the gRPC
transport is loaded only for grpc:// URLs, and HTTP users never pay for grpc.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from inferencehub.protocol.routing_codec import routing_body

DEFAULT_TIMEOUT_S = 60.0
IMPORT_TIMEOUT_S = 600.0  # an import uploads, verifies and gates a model: minutes, not seconds
IMPORT_CHUNK_BYTES = 1 << 20


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
    steps: tuple[tuple[str, float], ...] = ()  # a pipeline's (name, ms), in the order they ran


class Client(ABC):
    """What both transports offer; the CLI is written against this.

    Routing is written here once: a transport only says how a policy's JSON form reaches the
    server (`_apply_routing`).
    """

    @abstractmethod
    def ready(self) -> bool: ...
    @abstractmethod
    def models(self) -> list[dict[str, Any]]: ...
    @abstractmethod
    def model(self, name: str) -> dict[str, Any]: ...
    @abstractmethod
    def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        version: str = "",
        outputs: Sequence[str] = (),
    ) -> PredictResult: ...
    @abstractmethod
    def predict_image(
        self, model: str, image: bytes | Path, version: str = ""
    ) -> PredictResult: ...
    @abstractmethod
    def load_model(self, name: str) -> None: ...
    @abstractmethod
    def unload_model(self, name: str) -> None: ...
    @abstractmethod
    def import_model(
        self,
        path: Path,
        *,
        replace: bool = False,
        onnx_model: str = "",
        timeout_s: float = IMPORT_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Import a signed bundle (or, with `onnx_model`, a bare .onnx as that model's next
        version) into the server's repository: {"model", "versions", "signer"}."""

    @abstractmethod
    def traffic(self, name: str = "") -> list[dict[str, Any]]: ...
    @abstractmethod
    def served_counts(self, name: str) -> dict[str, int]: ...
    @abstractmethod
    def close(self) -> None: ...
    @abstractmethod
    def _apply_routing(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a policy in its JSON form; the model's metadata after the change."""

    def set_routing(
        self,
        name: str,
        split: Mapping[str, float] | None = None,
        labels: Mapping[str, str] | None = None,
        sticky: bool = True,
        reset: bool = False,
        shadow: Mapping[str, Any] | None = None,
        canary: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Replace the model's routing live (persisted); returns the model's metadata.

        `shadow` is {"version", "fraction"}; `canary` a running rollout to keep (as the model's
        metadata shows it) or a new one (see start_canary).
        """
        return self._apply_routing(name, routing_body(split, labels, sticky, reset, shadow, canary))

    def start_canary(self, name: str, version: str, **budgets: Any) -> dict[str, Any]:
        return self.set_routing(name, canary=canary_request(version, **budgets))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def file_pieces(path: Path) -> Iterator[bytes]:
    """A file in upload-sized pieces, so that no transport reads a bundle whole."""
    with path.open("rb") as file:
        while piece := file.read(IMPORT_CHUNK_BYTES):
            yield piece


def image_bytes(image: bytes | Path) -> bytes:
    """An image given as bytes or as a file, as bytes."""
    return image.read_bytes() if isinstance(image, Path) else image
