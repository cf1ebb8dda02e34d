"""The gRPC transport of the client SDK (inferencehub.v1 over the generated stubs).

Loaded by `connect()` only for grpc:// URLs; it imports the shared types, never the package
`inferencehub.client` itself, so there is no cycle to hide behind that lazy import.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import numpy as np

from inferencehub.client.types import (
    IMPORT_TIMEOUT_S,
    ClassScore,
    Client,
    ClientError,
    PredictResult,
    ServerUnreachableError,
    file_pieces,
    image_bytes,
)
from inferencehub.errors import InvalidRequestError
from inferencehub.protocol.json_codec import import_reply_to_json, model_to_json, traffic_to_json
from inferencehub.protocol.routing_codec import routing_request
from inferencehub.protocol.tensors import encode_bytes_elements, tensor_from_numpy, tensor_to_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024 + 65536


class GrpcClient(Client):
    """Synchronous client of the public gRPC API."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float) -> None:
        self._target = urlsplit(url).netloc
        self._channel = grpc.insecure_channel(
            self._target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._timeout_s = timeout_s
        self._image_inputs: dict[tuple[str, str], str] = {}

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def _error(self, exc: grpc.RpcError) -> ClientError:
        code = exc.code()  # type: ignore[attr-defined]
        details = exc.details()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.UNAVAILABLE and "connect" in (details or "").lower():
            return ServerUnreachableError(
                "UNAVAILABLE", f"cannot reach InferenceHub at grpc://{self._target}: {details}"
            )
        return ClientError(code.name, details or code.name)

    def ready(self) -> bool:
        try:
            return bool(self._call(self._stub.ServerInfo, pb.ServerInfoRequest()).ready)
        except ServerUnreachableError:
            return False

    def models(self) -> list[dict[str, Any]]:
        reply = self._call(self._stub.ListModels, pb.ListModelsRequest())
        return [model_to_json(m) for m in reply.models]

    def model(self, name: str) -> dict[str, Any]:
        return model_to_json(self._call(self._stub.GetModel, pb.GetModelRequest(name=name)))

    def load_model(self, name: str) -> None:
        """(Re)load a model from the server's repository."""
        self._call(self._stub.LoadModel, pb.LoadModelRequest(name=name))
        self._image_inputs.clear()

    def _apply_routing(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            request = routing_request(name, body)
        except InvalidRequestError as exc:
            raise ClientError("INVALID_ARGUMENT", exc.message) from None
        return model_to_json(self._call(self._stub.SetRouting, request))

    def import_model(
        self,
        path: Path,
        *,
        replace: bool = False,
        onnx_model: str = "",
        timeout_s: float = IMPORT_TIMEOUT_S,
    ) -> dict[str, Any]:
        def chunks() -> Iterator[pb.ImportChunk]:
            options = pb.ImportChunk(replace=replace, onnx_model=onnx_model)
            for piece in file_pieces(path):
                options.data = piece
                yield options
                options = pb.ImportChunk()

        try:
            reply = self._stub.ImportModel(chunks(), timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return import_reply_to_json(reply)

    def traffic(self, name: str = "") -> list[dict[str, Any]]:
        reply = self._call(self._stub.Traffic, pb.TrafficRequest(name=name))
        return [traffic_to_json(t) for t in reply.versions]

    def served_counts(self, name: str) -> dict[str, int]:
        reply = self._call(self._stub.ModelStatistics, pb.ModelStatisticsRequest(name=name))
        return {s.version: int(s.inference_count) for s in reply.versions}

    def unload_model(self, name: str) -> None:
        self._call(self._stub.UnloadModel, pb.UnloadModelRequest(name=name))

    def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        version: str = "",
        outputs: Sequence[str] = (),
    ) -> PredictResult:
        request = pb.PredictRequest(
            model_name=model,
            version=version,
            outputs=list(outputs),
            inputs=[tensor_from_numpy(name, array) for name, array in inputs.items()],
        )
        return self._predict(request)

    def predict_image(self, model: str, image: bytes | Path, version: str = "") -> PredictResult:
        data = image_bytes(image)
        input_name = self._image_input(model, version)
        image_tensor = pb.Tensor(
            name=input_name, datatype="BYTES", shape=[1], contents=encode_bytes_elements([data])
        )
        return self._predict(
            pb.PredictRequest(model_name=model, version=version, inputs=[image_tensor])
        )

    def _image_input(self, model: str, version: str) -> str:
        """Which input takes images, asked once per model and version."""
        key = (model, version)
        if key not in self._image_inputs:
            info = self._call(self._stub.GetModel, pb.GetModelRequest(name=model))
            wanted = version or info.default_version
            target = next((v for v in info.versions if v.version == wanted), None)
            if target is None:
                return ""  # let the server name the versions that exist
            if not target.image.input:
                raise ClientError(
                    "INVALID_ARGUMENT", f"model '{model}' version {wanted} takes no images"
                )
            self._image_inputs[key] = target.image.input
        return self._image_inputs[key]

    def _predict(self, request: pb.PredictRequest) -> PredictResult:
        started = time.perf_counter()
        reply = self._call(self._stub.Predict, request)
        latency_ms = (time.perf_counter() - started) * 1e3
        return PredictResult(
            model_name=reply.model_name,
            version=reply.version,
            request_id=reply.request_id,
            outputs={t.name: tensor_to_numpy(t) for t in reply.outputs},
            classifications=[
                [ClassScore(c.index, c.label, c.score) for c in row.classes]
                for row in reply.classifications
            ],
            timing={
                "preprocess_ms": reply.timing.preprocess_ms,
                "inference_ms": reply.timing.inference_ms,
                "postprocess_ms": reply.timing.postprocess_ms,
            },
            latency_ms=latency_ms,
            steps=tuple((step.name, step.ms) for step in reply.timing.steps),
        )
