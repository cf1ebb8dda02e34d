"""The public HTTP API (Starlette): health, /v1 models and predict; errors as {"error": ...}."""

from __future__ import annotations

import logging

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferencehub import __version__
from inferencehub.errors import HubError, InvalidRequestError
from inferencehub.gateway.auth import Authenticator, AuthMiddleware
from inferencehub.gateway.console import console_routes, load_assets, page, wants_page
from inferencehub.gateway.dataplane import ROUTING_KEY, DataPlane
from inferencehub.gateway.http_common import (
    JSONResponse,
    http_error,
    hub_error,
    read_body,
    unexpected_error,
)
from inferencehub.gateway.kserve_rest import kserve_routes
from inferencehub.gateway.kserve_shm import shared_memory_routes
from inferencehub.gateway.model_import import import_routes
from inferencehub.gateway.observe import Observer
from inferencehub.gateway.openapi import OPENAPI
from inferencehub.protocol.json_codec import (
    model_to_json,
    response_to_json,
    tensor_from_json,
    traffic_to_json,
)
from inferencehub.protocol.routing_codec import routing_request
from inferencehub.protocol.tensors import encode_bytes_elements
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)

# Bodies of these types are one encoded image; anything else is read as JSON tensors.
IMAGE_TYPES = ("application/octet-stream",)


def create_app(
    dataplane: DataPlane,
    max_request_bytes: int,
    observer: Observer | None = None,
    authenticator: Authenticator | None = None,
    max_bundle_bytes: int = 4 << 30,
) -> Starlette:
    """The HTTP application; `dataplane` does the work, this only converts at the edge."""
    assets = load_assets()

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        is_ready = await dataplane.ready()
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    async def status(request: Request) -> Response:
        """Processes, the door, models and traffic per version: the status view's one call."""
        assert observer is not None, "create_app(observer=...) serves /v1/status"
        return JSONResponse(await observer.status())

    async def metrics(request: Request) -> Response:
        assert observer is not None, "create_app(observer=...) serves /metrics"
        return Response(await observer.metrics(), media_type=CONTENT_TYPE_LATEST)

    async def traffic(request: Request) -> Response:
        versions = await dataplane.traffic(request.path_params.get("name", ""))
        return JSONResponse({"versions": [traffic_to_json(t) for t in versions]})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def server_info(request: Request) -> Response:
        if wants_page(request.scope):  # a browser: the console (its data calls are guarded)
            return page(assets, request)
        return JSONResponse({"name": "inferencehub", "version": __version__})

    async def list_models(request: Request) -> Response:
        models = await dataplane.list_models()
        return JSONResponse({"models": [model_to_json(m) for m in models]})

    async def set_routing(request: Request) -> Response:
        body = await read_body(request, max_request_bytes)
        message = _routing_request(request.path_params["name"], body)
        return JSONResponse(model_to_json(await dataplane.set_routing(message)))

    async def get_model(request: Request) -> Response:
        return JSONResponse(model_to_json(await dataplane.model(request.path_params["name"])))

    async def predict(request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version", "")
        key = request.headers.get(ROUTING_KEY, "")[:256]
        # The door: a 404 or 429 before the body is read.
        target = await dataplane.admit(name, version, "http", routing_key=key)
        try:
            body = await read_body(request, max_request_bytes)
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type.startswith("image/") or media_type in IMAGE_TYPES:
                pb_request = _image_predict_request(target, body, name, version)
            else:
                pb_request = _json_predict_request(body, name, version)
        except HubError as exc:
            dataplane.refused(name, "http", exc)
            raise
        pb_request.request_id = request.headers.get("x-request-id", "")[:128]
        # Served by the version admitted (and whose image size shaped the tensor), not a second
        # pick of a split that could land on another version.
        pb_request.version = target.version
        response = await dataplane.predict(pb_request, routing_key=key)
        return JSONResponse(
            response_to_json(response),
            headers={"x-model-version": response.version, "x-request-id": response.request_id},
        )

    routes = [
        Route("/", server_info, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v1/status", status, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name}", get_model, methods=["GET"]),
        Route("/v1/models/{name}/routing", set_routing, methods=["PUT"]),
        Route("/v1/traffic", traffic, methods=["GET"]),
        Route("/v1/models/{name}/traffic", traffic, methods=["GET"]),
        Route("/v1/models/{name}/predict", predict, methods=["POST"]),
        Route("/v1/models/{name}/versions/{version}/predict", predict, methods=["POST"]),
        *kserve_routes(dataplane, max_request_bytes),
        *shared_memory_routes(dataplane),
        *import_routes(dataplane, max_bundle_bytes),
        *console_routes(assets),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(AuthMiddleware, authenticator=authenticator)]
        if authenticator is not None
        else [],
        exception_handlers={
            HubError: hub_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
    )


def _routing_request(name: str, body: bytes) -> pb.SetRoutingRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    return routing_request(name, payload)


def _json_predict_request(body: bytes, name: str, version: str) -> pb.PredictRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            'body is not valid JSON; expected {"inputs": [{"name", "datatype", "shape", '
            '"data"}]} or an image with an image Content-Type'
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise InvalidRequestError("JSON body must be an object with an 'inputs' list")
    outputs = payload.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise InvalidRequestError("'outputs' must be a list of output names")
    parameters = payload.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidRequestError("'parameters' must be an object")
    return pb.PredictRequest(
        model_name=name,
        version=version,
        inputs=[tensor_from_json(i, item) for i, item in enumerate(payload["inputs"])],
        outputs=outputs,
        parameters={str(k): str(v) for k, v in parameters.items()},
    )


def _image_predict_request(
    target: pb.ModelVersion, body: bytes, name: str, version: str
) -> pb.PredictRequest:
    if not target.image.input:
        raise InvalidRequestError(
            f"model '{name}' version {target.version} takes no images; send JSON tensors "
            "(Content-Type: application/json)"
        )
    if not body:
        raise InvalidRequestError("could not decode image: the request body is empty")
    image = pb.Tensor(
        name=target.image.input, datatype="BYTES", shape=[1], contents=encode_bytes_elements([body])
    )
    return pb.PredictRequest(model_name=name, version=version, inputs=[image])
