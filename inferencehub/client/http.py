"""The HTTP transport of the client SDK: the /v1 convenience API (tensors as JSON) over httpx."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from inferencehub.client.types import (
    DEFAULT_TIMEOUT_S,
    IMPORT_TIMEOUT_S,
    ClassScore,
    Client,
    ClientError,
    PredictResult,
    ServerUnreachableError,
    file_pieces,
    image_bytes,
)
from inferencehub.protocol.datatypes import BYTES, NUMPY_BY_DATATYPE, datatype_of


class HttpClient(Client):
    """Synchronous client of the /v1 HTTP API (httpx)."""

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._url = url.rstrip("/")
        self._http = httpx.Client(base_url=self._url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(
                "unavailable", f"cannot reach InferenceHub at {self._url}: {exc}"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text or response.reason_phrase
            raise ClientError(response.status_code, message)
        return response.json()

    def ready(self) -> bool:
        try:
            return bool(self._request("GET", "/v2/health/ready")["ready"])
        except ClientError as exc:
            if isinstance(exc, ServerUnreachableError) or exc.status == 503:
                return False
            raise

    def models(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v1/models")["models"])

    def status(self) -> dict[str, Any]:
        """Processes (from the supervisor), worker health and traffic per version."""
        return dict(self._request("GET", "/v1/status"))

    def model(self, name: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/models/{name}"))

    def load_model(self, name: str) -> None:
        """(Re)load a model from the server's repository (KServe repository extension)."""
        self._request("POST", f"/v2/repository/models/{name}/load")

    def unload_model(self, name: str) -> None:
        self._request("POST", f"/v2/repository/models/{name}/unload")

    def _apply_routing(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._request("PUT", f"/v1/models/{name}/routing", json=body))

    def import_model(
        self,
        path: Path,
        *,
        replace: bool = False,
        onnx_model: str = "",
        timeout_s: float = IMPORT_TIMEOUT_S,
    ) -> dict[str, Any]:
        params = {"replace": "true"} if replace else {}
        if onnx_model:
            params["onnx_model"] = onnx_model
        return dict(
            self._request(
                "POST",
                "/v1/repository/import",
                params=params,
                content=file_pieces(path),
                headers={"content-type": "application/octet-stream"},
                timeout=timeout_s,
            )
        )

    def traffic(self, name: str = "") -> list[dict[str, Any]]:
        """Requests, errors and latency percentiles per version, as the gateway saw them."""
        path = f"/v1/models/{name}/traffic" if name else "/v1/traffic"
        return list(self._request("GET", path)["versions"])

    def served_counts(self, name: str) -> dict[str, int]:
        """Inferences served per version since load (the observed split)."""
        stats = self._request("GET", f"/v2/models/{name}/stats")["model_stats"]
        return {s["version"]: int(s["inference_count"]) for s in stats}

    @staticmethod
    def _path(model: str, version: str) -> str:
        return (
            f"/v1/models/{model}/versions/{version}/predict"
            if version
            else f"/v1/models/{model}/predict"
        )

    def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        version: str = "",
        outputs: Sequence[str] = (),
    ) -> PredictResult:
        body = {
            "inputs": [
                {
                    "name": name,
                    "datatype": datatype_of(a),
                    "shape": list(a.shape),
                    "data": a.reshape(-1).tolist()
                    if a.dtype.kind not in "SO"
                    else [e.decode() if isinstance(e, bytes) else str(e) for e in a.reshape(-1)],
                }
                for name, a in inputs.items()
            ],
            "outputs": list(outputs),
        }
        started = time.perf_counter()
        reply = self._request("POST", self._path(model, version), json=body)
        return _result_from_json(reply, (time.perf_counter() - started) * 1e3)

    def predict_image(self, model: str, image: bytes | Path, version: str = "") -> PredictResult:
        started = time.perf_counter()
        reply = self._request(
            "POST",
            self._path(model, version),
            content=image_bytes(image),
            headers={"content-type": "application/octet-stream"},
        )
        return _result_from_json(reply, (time.perf_counter() - started) * 1e3)


def _result_from_json(reply: dict[str, Any], latency_ms: float) -> PredictResult:
    outputs = {}
    for item in reply["outputs"]:
        if item["datatype"] == BYTES:
            array = np.asarray(item["data"], dtype=object)
        else:
            array = np.asarray(item["data"], dtype=NUMPY_BY_DATATYPE[item["datatype"]])
        outputs[item["name"]] = array.reshape(item["shape"])
    return PredictResult(
        model_name=reply["model_name"],
        version=reply["version"],
        request_id=reply["request_id"],
        outputs=outputs,
        classifications=[[ClassScore(**c) for c in row] for row in reply["classifications"]],
        timing=dict(reply["timing"]),
        latency_ms=latency_ms,
        steps=tuple((step["name"], step["ms"]) for step in reply.get("steps", ())),
    )
