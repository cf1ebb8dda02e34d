"""The OpenAPI 3.1 document of the HTTP API, served at GET /openapi.json.

Written by hand next to the routes; tests/unit/test_openapi.py fails when a route is missing.
"""

from __future__ import annotations

from typing import Any, Final

from inferencehub import __version__
from inferencehub.gateway.openapi_schemas import COMPONENTS, json_content

_ERROR = {"$ref": "#/components/responses/Error"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "A version folder of the model repository.",
}


def _get(
    summary: str, schema: dict[str, Any], *, versioned: bool = False, named: bool = True
) -> dict[str, Any]:
    parameters = ([_NAME] if named else []) + ([_VERSION] if versioned else [])
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {"200": json_content(schema), "4XX": _ERROR, "503": _ERROR},
        }
    }


def _model_routes(prefix: str, versioned: bool) -> dict[str, Any]:
    ref = "#/components/schemas/"
    return {
        prefix: _get(
            "Model metadata (KServe v2)", {"$ref": ref + "ModelMetadata"}, versioned=versioned
        ),
        f"{prefix}/ready": _get(
            "Whether the model version can serve (4xx when not)",
            {"type": "object"},
            versioned=versioned,
        ),
        f"{prefix}/config": _get(
            "Triton-style model configuration", {"$ref": ref + "ModelConfig"}, versioned=versioned
        ),
        f"{prefix}/stats": _get(
            "Inference statistics (KServe statistics extension)",
            {"$ref": ref + "Statistics"},
            versioned=versioned,
        ),
        f"{prefix}/infer": {
            "post": {
                "summary": "Run inference (KServe v2; JSON tensors or the binary tensor "
                "data extension with Inference-Header-Content-Length)",
                "parameters": [_NAME]
                + ([_VERSION] if versioned else [])
                + [
                    {
                        "name": "Inference-Header-Content-Length",
                        "in": "header",
                        "schema": {"type": "integer"},
                        "description": "Length of the JSON header when binary data follows it.",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": ref + "InferRequest"}},
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {"schema": {"$ref": ref + "InferResponse"}},
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                        },
                    },
                    "4XX": _ERROR,
                    "503": _ERROR,
                },
            }
        },
    }


def _post(summary: str, named: bool, body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_NAME] if named else [],
        "responses": {"200": json_content({"type": "object"}), "4XX": _ERROR},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": body}}
    return {"post": operation}


def _shared_memory_routes() -> dict[str, Any]:
    """Triton's shared-memory extensions: system regions served, CUDA refused (CPU build)."""
    region = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "key": {"type": "string"},
            "offset": {"type": "integer"},
            "byte_size": {"type": "integer"},
        },
    }
    register = {
        "schema": {
            "type": "object",
            "required": ["key", "byte_size"],
            "properties": {k: region["properties"][k] for k in ("key", "offset", "byte_size")},
        }
    }
    routes: dict[str, Any] = {}
    for kind, what in (("system", "System"), ("cuda", "CUDA")):
        base = f"/v2/{kind}sharedmemory"
        listing = {"type": "array", "items": region if kind == "system" else {"type": "object"}}
        routes[f"{base}/status"] = _get(f"{what} shared-memory regions", listing, named=False)
        routes[f"{base}/region/{{name}}/status"] = _get(f"One {what} region", listing)
        routes[f"{base}/region/{{name}}/register"] = _post(
            "Register a POSIX shm object as a region (this API key's only)"
            if kind == "system"
            else "Refused: CUDA shared memory is not supported by this server",
            named=True,
            body=register if kind == "system" else None,
        )
        routes[f"{base}/unregister"] = _post(f"Unregister every {what} region", named=False)
        routes[f"{base}/region/{{name}}/unregister"] = _post(
            f"Unregister one {what} region", named=True
        )
    return routes


def _predict(versioned: bool) -> dict[str, Any]:
    return {
        "post": {
            "summary": "Run a model on an image (image/* or application/octet-stream body) or "
            "on JSON tensors; returns outputs and top-k classes",
            "parameters": [_NAME] + ([_VERSION] if versioned else []),
            "requestBody": {
                "required": True,
                "content": {
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}},
                },
            },
            "responses": {
                "200": json_content({"$ref": "#/components/schemas/PredictResponse"}),
                "4XX": _ERROR,
                "503": _ERROR,
            },
        }
    }


OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "InferenceHub",
        "version": __version__,
        "description": "KServe v2 / Open Inference Protocol plus the /v1 convenience API.",
    },
    "paths": {
        "/": _get(
            "Server name and version; a browser (Accept: text/html) gets the web console",
            {"type": "object"},
            named=False,
        ),
        "/ui/{name}": {
            "get": {
                "summary": "The web console's static files (HTML, CSS, JavaScript; no data)",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "the file"}, "404": {"description": "none"}},
            }
        },
        "/openapi.json": _get("This document", {"type": "object"}, named=False),
        "/v2": _get("Server metadata and protocol extensions", {"type": "object"}, named=False),
        "/v2/health/live": _get("Liveness", {"type": "object"}, named=False),
        "/v2/health/ready": _get(
            "Readiness (503 until the worker serves)", {"type": "object"}, named=False
        ),
        "/v2/models/stats": _get(
            "Statistics of every model", {"$ref": "#/components/schemas/Statistics"}, named=False
        ),
        **_model_routes("/v2/models/{name}", versioned=False),
        **_model_routes("/v2/models/{name}/versions/{version}", versioned=True),
        **_shared_memory_routes(),
        "/v2/repository/index": {
            "post": {
                "summary": "Every model version and its state",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                            }
                        }
                    }
                },
                "responses": {"200": json_content({"type": "array", "items": {"type": "object"}})},
            }
        },
        "/v2/repository/models/{name}/load": {
            "post": {
                "summary": "(Re)load a model from the repository",
                "parameters": [_NAME],
                "responses": {"200": json_content({"type": "object"}), "4XX": _ERROR},
            }
        },
        "/v2/repository/models/{name}/unload": {
            "post": {
                "summary": "Unload a model",
                "parameters": [_NAME],
                "responses": {"200": json_content({"type": "object"}), "4XX": _ERROR},
            }
        },
        "/v1/status": _get(
            "Processes (pid, state, uptime, restarts, RSS, CPU), the door, models, routing and "
            "traffic per version (last 10 s and since start): the status view's one call",
            {"type": "object"},
            named=False,
        ),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "responses": {"200": {"description": "text/plain; version=0.0.4"}},
            }
        },
        "/v1/models": _get(
            "Every model with versions, states and signatures", {"type": "object"}, named=False
        ),
        "/v1/models/{name}": _get(
            "One model's versions, states and signatures", {"type": "object"}
        ),
        "/v1/repository/import": {
            "post": {
                "summary": "Import a signed bundle (docs/bundles.md), or a bare .onnx as the next "
                "version of ?onnx_model=NAME: verified, gated, renamed into the repository and "
                "loaded; any failure changes nothing. Needs a key for every model.",
                "parameters": [
                    {"name": "replace", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "onnx_model", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                },
                "responses": {
                    "200": {"description": "model, versions installed, signer fingerprint"},
                    "400": {"description": "not a valid, trusted bundle (says what failed)"},
                    "409": {"description": "the version exists (use replace) or is reloading"},
                    "413": {"description": "larger than [repository] max_bundle_bytes"},
                },
            }
        },
        "/v1/models/{name}/routing": {
            "put": {
                "summary": 'Replace the routing policy live (persisted); {"reset": true} returns '
                "to model.toml's",
                "parameters": [_NAME],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "split": {
                                        "type": "object",
                                        "additionalProperties": {"type": "number"},
                                    },
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "sticky": {"type": "boolean"},
                                    "reset": {"type": "boolean"},
                                    "shadow": {
                                        "type": "object",
                                        "properties": {
                                            "version": {"type": "string"},
                                            "fraction": {"type": "number"},
                                        },
                                    },
                                    "canary": {
                                        "type": "object",
                                        "description": "Starts an automatic rollout from the "
                                        "current policy (see docs/versions.md).",
                                        "properties": {
                                            "version": {"type": "string"},
                                            "baseline": {"type": "string"},
                                            "ramp": {"type": "array", "items": {"type": "number"}},
                                            "every_s": {"type": "number"},
                                            "max_error_rate": {"type": "number"},
                                            "max_p99_ratio": {"type": "number"},
                                            "min_requests": {"type": "integer"},
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {"200": json_content({"type": "object"}), "4XX": _ERROR},
            }
        },
        "/v1/traffic": _get(
            "Requests, errors and latency percentiles per model version (primary and shadow)",
            {"type": "object"},
            named=False,
        ),
        "/v1/models/{name}/traffic": _get(
            "One model's requests, errors and latency percentiles per version",
            {"type": "object"},
        ),
        "/v1/models/{name}/predict": _predict(versioned=False),
        "/v1/models/{name}/versions/{version}/predict": _predict(versioned=True),
    },
    "components": COMPONENTS,
}
