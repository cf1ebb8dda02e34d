"""Routing policies between their JSON form (REST bodies, SDK keyword arguments, the CLI) and
protobuf: written once, used by the REST adapter and by both SDK transports.

The JSON form: {"split": {"1": 90, "2": 10}, "labels": {"canary": "2"}, "sticky": true,
"shadow": {"version": "3", "fraction": 0.05}, "canary": {...}} or {"reset": true}. The rules
that decide what a policy does live in protocol/canary.py and protocol/validation.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from inferencehub.errors import InvalidRequestError
from inferencehub.v1 import inference_pb2 as pb

SHAPE = (
    'routing body must be JSON like {"split": {"1": 90, "2": 10}, "labels": '
    '{"canary": "2"}, "sticky": true} or {"reset": true}'
)


def routing_body(
    split: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    sticky: bool = True,
    reset: bool = False,
    shadow: Mapping[str, Any] | None = None,
    canary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON form of the SDK's set_routing arguments."""
    if reset:
        return {"reset": True}
    body: dict[str, Any] = {
        "split": dict(split or {}),
        "labels": dict(labels or {}),
        "sticky": sticky,
    }
    if shadow is not None:
        body["shadow"] = dict(shadow)
    if canary is not None:
        body["canary"] = dict(canary)
    return body


def routing_request(name: str, payload: Any) -> pb.SetRoutingRequest:
    """A policy's JSON form as the request the worker applies.

    Raises:
        InvalidRequestError: not that shape.
    """
    if not isinstance(payload, dict):
        raise InvalidRequestError(SHAPE)
    if payload.get("reset") is True:
        return pb.SetRoutingRequest(name=name, reset=True)
    split, labels = payload.get("split", {}), payload.get("labels", {})
    if not isinstance(split, dict) or not all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in split.values()
    ):
        raise InvalidRequestError("'split' must map version numbers to numeric weights")
    if not isinstance(labels, dict) or not all(isinstance(v, str | int) for v in labels.values()):
        raise InvalidRequestError("'labels' must map names to version numbers")
    routing = pb.RoutingPolicy(
        weights={str(k): float(w) for k, w in split.items()},
        labels={str(k): str(v) for k, v in labels.items()},
        sticky=payload.get("sticky", True) is not False,
    )
    shadow = payload.get("shadow")
    if shadow is not None:
        if (
            not isinstance(shadow, dict)
            or not isinstance(shadow.get("version"), str | int)
            or not isinstance(shadow.get("fraction"), int | float)
        ):
            raise InvalidRequestError('\'shadow\' must be like {"version": "3", "fraction": 0.05}')
        routing.shadow.version = str(shadow["version"])
        routing.shadow.fraction = float(shadow["fraction"])
    rollout = payload.get("canary")
    if rollout is not None:
        if not isinstance(rollout, dict):
            raise InvalidRequestError("'canary' must be an object")
        try:
            json_format.ParseDict(
                {k: v for k, v in rollout.items() if k != "percent"}, routing.canary
            )
        except json_format.ParseError as exc:
            raise InvalidRequestError(
                f'\'canary\': {exc}; expected like {{"version": "2", "ramp": [5, 25, 50, '
                f'100], "every_s": 120, "max_error_rate": 0.01, "max_p99_ratio": 1.5}}'
            ) from None
    return pb.SetRoutingRequest(name=name, routing=routing)
