"""The public KServe v2 HTTP API: metadata, config, stats, repository and infer (JSON + binary)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferencehub.errors import HubError, InvalidRequestError
from inferencehub.gateway.dataplane import ROUTING_KEY, DataPlane
from inferencehub.gateway.http_common import JSONResponse, read_body
from inferencehub.protocol import kserve_codec as codec
from inferencehub.protocol.json_codec import tensor_from_json
from inferencehub.protocol.kserve_parameters import SHM_REGION, output_options, region_ref
from inferencehub.v1 import inference_pb2 as pb

HEADER_LENGTH = "inference-header-content-length"


def _parameters(item: dict[str, Any]) -> dict[str, Any]:
    parameters = item.get("parameters")
    return parameters if isinstance(parameters, dict) else {}


def _flag(parameters: dict[str, Any], key: str) -> bool | None:
    value = parameters.get(key)
    return value if isinstance(value, bool) else None


def parse_infer_request(
    body: bytes, header_length: str | None, name: str, version: str
) -> tuple[pb.PredictRequest, list[bytes | memoryview], dict[str, bool], bool]:
    """A v2 REST infer body (JSON, optionally followed by binary tensor data) as a request.

    Returns the request, its inputs' bytes apart from it (binary parts as views of the body,
    not copies), which outputs were asked for in binary, and the default for others.

    Raises:
        InvalidRequestError: malformed JSON, header length or binary sizes.
    """
    if header_length is None:
        header_bytes, binary = body, memoryview(b"")
    else:
        if not (header_length.isascii() and header_length.isdigit()) or not 0 < int(
            header_length
        ) <= len(body):
            raise InvalidRequestError(
                f"Inference-Header-Content-Length {header_length!r} must be a positive byte count"
                f" within the {len(body)}-byte body"
            )
        header_bytes, binary = body[: int(header_length)], memoryview(body)[int(header_length) :]
    try:
        header = orjson.loads(header_bytes)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            'infer body is not valid JSON; expected {"inputs": [{"name", "datatype", "shape", '
            '"data" or parameters.binary_data_size}]}'
        ) from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise InvalidRequestError("infer body must be a JSON object with an 'inputs' list")
    inputs: list[pb.Tensor] = []
    payloads: list[bytes | memoryview] = []
    offset = 0
    for index, item in enumerate(header["inputs"]):
        parameters = _parameters(item) if isinstance(item, dict) else {}
        size = parameters.get("binary_data_size")
        if SHM_REGION in parameters:
            tensor = _binary_tensor(index, item)
            if size is not None or "data" in item:
                raise InvalidRequestError(
                    f"input '{tensor.name}' is in shared memory and carries data too"
                )
            region = region_ref(f"input '{tensor.name}'", parameters)
            assert region is not None
            tensor.shared_memory.CopyFrom(region)
            inputs.append(tensor)
            payloads.append(b"")
            continue
        if size is None:
            tensor = tensor_from_json(index, item)
            payloads.append(tensor.contents)
            tensor.ClearField("contents")
            inputs.append(tensor)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise InvalidRequestError(
                f"inputs[{index}]: binary_data_size {size!r} runs past the {len(binary)} bytes "
                "of binary data after the JSON header"
            )
        inputs.append(_binary_tensor(index, item))
        payloads.append(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise InvalidRequestError(
            f"{len(binary) - offset} bytes of binary data follow the last input's; "
            "binary_data_size values must add up to the binary part"
        )
    outputs = header.get("outputs", [])
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and "name" in o for o in outputs
    ):
        raise InvalidRequestError("'outputs' must be a list of {\"name\": ...} objects")
    parameters = header.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidRequestError("'parameters' must be an object")
    binary_outputs = {
        o["name"]: flag
        for o in outputs
        if (flag := _flag(_parameters(o), "binary_data")) is not None
    }
    request = pb.PredictRequest(
        model_name=name,
        version=version,
        inputs=inputs,
        outputs=[o["name"] for o in outputs],
        parameters={str(k): str(v) for k, v in parameters.items()},
        request_id=str(header.get("id", ""))[:128],
    )
    for output in outputs:
        options = output_options(str(output["name"]), _parameters(output))
        if options is not None:
            request.output_options[str(output["name"])].CopyFrom(options)
    return request, payloads, binary_outputs, bool(_flag(parameters, "binary_data_output"))


def _binary_tensor(index: int, item: dict[str, Any]) -> pb.Tensor:
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str) or not isinstance(shape, list):
        raise InvalidRequestError(f"inputs[{index}] needs 'name', 'datatype' and 'shape'")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidRequestError(f"input '{name}': 'shape' must be a list of non-negative ints")
    return pb.Tensor(name=name, datatype=datatype, shape=shape)


def infer_response(
    response: pb.PredictResponse,
    request_id: str,
    binary_outputs: dict[str, bool],
    binary_default: bool,
) -> Response:
    """JSON response, with binary outputs appended after the header when asked for."""
    header: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.version,
        "outputs": [],
    }
    if request_id:
        header["id"] = request_id
    chunks = []
    for tensor in response.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if tensor.HasField("shared_memory"):
            # Written into the client's region: name, datatype and shape only, as Triton's HTTP
            # server answers (its C++ client, perf_analyzer's, reads binary_data_size from any
            # output that has parameters).
            pass
        elif binary_outputs.get(tensor.name, binary_default):
            entry["parameters"] = {"binary_data_size": len(tensor.contents)}
            chunks.append(tensor.contents)
        else:
            array = codec.output_array(tensor)
            entry["data"] = (
                [e.decode(errors="replace") for e in array.tolist()]
                if tensor.datatype == "BYTES"
                else array
            )
        header["outputs"].append(entry)
    headers = {"x-model-version": response.version}
    if not chunks:
        return JSONResponse(header, headers=headers)
    json_part = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    headers["inference-header-content-length"] = str(len(json_part))
    return Response(
        json_part + b"".join(chunks), media_type="application/octet-stream", headers=headers
    )


def kserve_routes(dataplane: DataPlane, max_request_bytes: int) -> list[Route]:
    """The /v2 routes (health lives with the app, shared by both APIs)."""

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(codec.server_metadata())

    async def model_version(request: Request) -> tuple[pb.ModelInfo, pb.ModelVersion]:
        params = request.path_params
        return await dataplane.model_version(params["name"], params.get("version", ""))

    async def metadata(request: Request) -> Response:
        return JSONResponse(codec.model_metadata(*await model_version(request)))

    async def ready(request: Request) -> Response:
        model, version = await model_version(request)
        return JSONResponse({"name": model.name, "version": version.version, "ready": True})

    async def config(request: Request) -> Response:
        model, version = await model_version(request)
        return JSONResponse(codec.model_config(model, version))

    async def stats(request: Request) -> Response:
        params = request.path_params
        versions = await dataplane.statistics(params.get("name", ""), params.get("version", ""))
        return JSONResponse(codec.statistics(versions))

    async def infer(request: Request) -> Response:
        params = request.path_params
        key = request.headers.get(ROUTING_KEY, "")[:256]
        # The door: a 404 or 429 before the body is read.
        target = await dataplane.admit(
            params["name"], params.get("version", ""), "http", routing_key=key
        )
        try:
            body = await read_body(request, max_request_bytes)
            predict, payloads, binary_outputs, binary_default = parse_infer_request(
                body, request.headers.get(HEADER_LENGTH), params["name"], params.get("version", "")
            )
        except HubError as exc:
            dataplane.refused(params["name"], "http", exc)
            raise
        predict.version = target.version  # served by the version admitted, not a second pick
        client_id = predict.request_id
        response = await dataplane.predict(predict, routing_key=key, payloads=payloads)
        return infer_response(response, client_id, binary_outputs, binary_default)

    async def repository_index(request: Request) -> Response:
        body = await read_body(request, max_request_bytes)
        try:
            options = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            raise InvalidRequestError(
                'repository index body must be JSON: {"ready": bool}'
            ) from None
        ready_only = bool(isinstance(options, dict) and options.get("ready"))
        return JSONResponse(codec.repository_index(await dataplane.list_models(), ready_only))

    async def load(request: Request) -> Response:
        await dataplane.load_model(request.path_params["name"])
        return JSONResponse({})

    async def unload(request: Request) -> Response:
        await dataplane.unload_model(request.path_params["name"])
        return JSONResponse({})

    versioned = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/models/stats", stats, methods=["GET"]),
        Route("/v2/models/{name}", metadata, methods=["GET"]),
        Route(versioned, metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", ready, methods=["GET"]),
        Route(f"{versioned}/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}/config", config, methods=["GET"]),
        Route(f"{versioned}/config", config, methods=["GET"]),
        Route("/v2/models/{name}/stats", stats, methods=["GET"]),
        Route(f"{versioned}/stats", stats, methods=["GET"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route(f"{versioned}/infer", infer, methods=["POST"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", unload, methods=["POST"]),
    ]
