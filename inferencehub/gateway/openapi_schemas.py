"""The reusable parts of the OpenAPI document (openapi.py): schemas and the error response."""

from __future__ import annotations

from typing import Any, Final


def json_content(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


TENSOR: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {
            "type": "string",
            "enum": [
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT8",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
                "BYTES",
            ],
        },
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "parameters": {"type": "object"},
        "data": {
            "description": "Row-major values, flat or nested; absent when "
            "parameters.binary_data_size is set"
        },
    },
}

SPEC: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}

COMPONENTS: Final[dict[str, Any]] = {
    "responses": {
        "Error": json_content(
            {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "What was wrong and what was expected",
        )
    },
    "schemas": {
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": SPEC},
                "outputs": {"type": "array", "items": SPEC},
            },
        },
        "ModelConfig": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "platform": {"type": "string"},
                "max_batch_size": {"type": "integer"},
                "input": {"type": "array", "items": {"type": "object"}},
                "output": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Statistics": {
            "type": "object",
            "properties": {"model_stats": {"type": "array", "items": {"type": "object"}}},
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": TENSOR},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "parameters": {"type": "object"},
                        },
                    },
                },
            },
        },
        "InferResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": TENSOR},
            },
        },
        "PredictResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "version": {"type": "string"},
                "request_id": {"type": "string"},
                "outputs": {"type": "array", "items": TENSOR},
                "classifications": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "label": {"type": "string"},
                                "score": {"type": "number"},
                            },
                        },
                    },
                },
                "timing": {"type": "object"},
            },
        },
    },
}
