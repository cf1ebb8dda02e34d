"""Routing rules, pure: which version serves a request, and which policies are valid.

A policy (`pb.RoutingPolicy`) is a weighted split, labels, stickiness, a shadow and a canary.
The gateway resolves each request's version with it (`resolve_version`); the worker checks and
starts the policies it is given (`prepare`) and drops what cannot serve from the ones it reads
(`usable`). The canary's own rules are in canary.py; the JSON form in routing_codec.py; the
worker's persistence of policies in worker/routing.py.
"""

from __future__ import annotations

import hashlib
import random

from inferencehub.errors import InvalidRequestError, ModelNotFoundError, ModelNotReadyError
from inferencehub.protocol import canary
from inferencehub.v1 import inference_pb2 as pb


def version_order(version: str) -> tuple[int, str]:
    """Sort key for version folder names: numbers in numeric order, any other name after."""
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def ready_versions(info: pb.ModelInfo) -> set[str]:
    return {v.version for v in info.versions if v.state == pb.ModelVersion.READY}


def pick_version(routing: pb.RoutingPolicy, routing_key: str, model_name: str) -> str:
    """A version from the weighted split: by hash of the routing key when sticky, else random.

    The same key and split always give the same version; a key's position on [0, 1) does not
    depend on the other versions, so growing a canary moves only the keys that must move.
    """
    weights = sorted(
        ((v, w) for v, w in routing.weights.items() if w > 0), key=lambda i: version_order(i[0])
    )
    total = sum(w for _, w in weights)
    if routing.sticky and routing_key:
        digest = hashlib.sha256(f"{model_name}\0{routing_key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * total
    else:
        point = random.random() * total  # noqa: S311 - traffic splitting, not security
    for version, weight in weights:
        if point < weight:
            return version
        point -= weight
    return weights[-1][0]


def resolve_version(model: pb.ModelInfo, requested: str, routing_key: str = "") -> pb.ModelVersion:
    """Pick the version a request names: a number, a label, or "" (the routing policy).

    Raises:
        ModelNotFoundError: no such version; the message names those that exist.
        ModelNotReadyError: the version exists but failed to load.
    """
    wanted = model.routing.labels.get(requested, requested)
    if not wanted and any(w > 0 for w in model.routing.weights.values()):
        wanted = pick_version(model.routing, routing_key, model.name)
    wanted = wanted or model.default_version
    if not wanted:
        reasons = "; ".join(f"version {v.version}: {v.error}" for v in model.versions)
        raise ModelNotReadyError(f"model '{model.name}' failed to load ({reasons})")
    for version in model.versions:
        if version.version == wanted:
            if version.state == pb.ModelVersion.UNLOADED:
                raise ModelNotReadyError(
                    f"model '{model.name}' is unloaded; load it with "
                    f"POST /v2/repository/models/{model.name}/load"
                )
            if version.state != pb.ModelVersion.READY:
                raise ModelNotReadyError(
                    f"model '{model.name}' version {wanted} failed to load: {version.error}"
                )
            return version
    existing = ", ".join(v.version for v in model.versions) or "none"
    if model.routing.labels:
        existing += f" (labels: {', '.join(sorted(model.routing.labels))})"
    raise ModelNotFoundError(
        f"model '{model.name}' has no version '{wanted}'; versions: {existing}"
    )


def usable(policy: pb.RoutingPolicy, ready: set[str]) -> list[str]:
    """Drop weights and a shadow naming versions that cannot serve (a split with no usable
    weight left means the default version). Returns what was dropped, for the log."""
    dropped = []
    had_split = bool(policy.weights)
    for version, weight in list(policy.weights.items()):
        if version not in ready or weight < 0:
            dropped.append(
                f"split weight for version {version} ignored (not a ready version, or negative)"
            )
            del policy.weights[version]
    if had_split and not any(policy.weights.values()):
        dropped.append("no usable split weight; serving the default version")
        policy.ClearField("weights")
    if policy.HasField("shadow") and policy.shadow.version not in ready:
        dropped.append(f"shadow version {policy.shadow.version} is not ready; no shadow")
        policy.ClearField("shadow")
    return dropped


def prepare(info: pb.ModelInfo, requested: pb.RoutingPolicy, now_ms: int) -> pb.RoutingPolicy:
    """Check a requested policy; a new canary becomes its first step over the current policy.

    Raises:
        InvalidRequestError: names what is wrong; nothing changes.
    """
    ready = ready_versions(info)
    routing = pb.RoutingPolicy()
    routing.CopyFrom(requested)
    if routing.HasField("canary") and routing.canary.state == pb.Canary.STATE_UNSPECIFIED:
        rollout = pb.RoutingPolicy()
        rollout.CopyFrom(info.routing)
        rollout.canary.CopyFrom(routing.canary)
        rollout.canary.baseline = (
            rollout.canary.baseline or info.routing.labels.get("stable", "") or info.default_version
        )
        canary.check(rollout.canary, ready)
        routing = canary.start(rollout, now_ms)
    elif routing.canary.state == pb.Canary.RUNNING:
        canary.check(routing.canary, ready)
    check(ready, routing)
    return routing


def check(ready: set[str], routing: pb.RoutingPolicy) -> None:
    """Raises InvalidRequestError when the policy names versions that cannot serve or has
    impossible weights or fractions."""
    named = {
        **{f"weight of version {v}": v for v in routing.weights},
        **{f"label '{k}'": v for k, v in routing.labels.items()},
    }
    if routing.HasField("shadow"):
        named["shadow"] = routing.shadow.version
    for what, version in named.items():
        if version not in ready:
            raise InvalidRequestError(
                f"{what} names version {version!r}, which is not ready; ready versions: "
                f"{', '.join(sorted(ready, key=version_order)) or 'none'}"
            )
    if any(w < 0 for w in routing.weights.values()):
        raise InvalidRequestError("split weights must not be negative")
    if routing.weights and not any(routing.weights.values()):
        raise InvalidRequestError("a split needs at least one positive weight")
    if routing.HasField("shadow") and not 0 < routing.shadow.fraction <= 1:
        raise InvalidRequestError(
            f"shadow fraction must be in (0, 1], got {routing.shadow.fraction:g}"
        )
