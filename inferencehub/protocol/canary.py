"""The automatic canary as pure functions of the routing policy: start, judge, step, end.

The policy (RoutingPolicy.canary) is the whole state of a rollout, stored and persisted by the
worker like any routing change; the gateway's controller only reads it, judges the traffic of
the current step and writes the next policy. So a rollout survives restarts of either process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferencehub.errors import InvalidRequestError
from inferencehub.v1 import inference_pb2 as pb

DEFAULT_MIN_REQUESTS = 20
RUNNING = pb.Canary.RUNNING


@dataclass(frozen=True, slots=True)
class Window:
    """One version's traffic during the current step."""

    requests: int
    errors: int
    p99_s: float


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # "hold" | "advance" | "promote" | "rollback"
    reason: str = ""


def check(canary: pb.Canary, ready: set[str]) -> None:
    """Refuse a rollout that cannot run.

    Raises:
        InvalidRequestError: names the first problem.
    """
    if canary.version not in ready:
        raise InvalidRequestError(
            f"canary version {canary.version!r} is not ready; ready versions: "
            f"{', '.join(sorted(ready, key=int)) or 'none'}"
        )
    if canary.baseline not in ready:
        raise InvalidRequestError(f"baseline version {canary.baseline!r} is not ready")
    if canary.baseline == canary.version:
        raise InvalidRequestError(
            f"the canary and the stable version are both {canary.version}; name another version"
        )
    ramp = list(canary.ramp)
    if not ramp or any(not 0 < p <= 100 for p in ramp) or ramp != sorted(set(ramp)):
        raise InvalidRequestError(
            f"ramp must be ascending percentages in (0, 100], e.g. 5,25,50,100; got {ramp}"
        )
    if not canary.every_s > 0:
        raise InvalidRequestError(f"every must be a positive duration, got {canary.every_s} s")
    if not 0 <= canary.max_error_rate <= 1:
        raise InvalidRequestError(
            f"max error rate must be between 0 and 100 %, got {canary.max_error_rate:.4g}"
        )
    if not canary.max_p99_ratio >= 1:
        raise InvalidRequestError(
            f"max p99 ratio must be at least 1 (canary p99 / stable p99), "
            f"got {canary.max_p99_ratio:.4g}"
        )


def start(routing: pb.RoutingPolicy, now_ms: int) -> pb.RoutingPolicy:
    """The policy of the rollout's first step (call after `check`)."""
    started = pb.RoutingPolicy()
    started.CopyFrom(routing)
    started.canary.state = RUNNING
    started.canary.step = 0
    started.canary.reason = ""
    started.canary.min_requests = started.canary.min_requests or DEFAULT_MIN_REQUESTS
    started.canary.started_ms = started.canary.updated_ms = now_ms
    return _with_step_weights(started)


def judge(canary: pb.Canary, window: Window, baseline: Window, elapsed_s: float) -> Verdict:
    """What to do now with a running rollout, from its step's traffic so far.

    A budget is breached as soon as it is certain: errors / max(requests, min_requests) already
    exceeds the error budget (so one early error against a 1 % budget rolls back without waiting
    for 20 requests), or the p99s of both versions, each over at least min_requests, exceed the
    ratio. A step advances after `every_s` with at least min_requests canary requests.
    """
    floor = max(1, canary.min_requests)
    if window.errors and window.errors / max(window.requests, floor) > canary.max_error_rate:
        return Verdict(
            "rollback",
            f"error rate {window.errors}/{window.requests} "
            f"({window.errors / window.requests:.1%}) at {_percent(canary)} breached the budget "
            f"of {canary.max_error_rate:.1%}",
        )
    if (
        window.requests >= floor
        and baseline.requests >= floor
        and baseline.p99_s > 0
        and window.p99_s / baseline.p99_s > canary.max_p99_ratio
    ):
        return Verdict(
            "rollback",
            f"p99 {window.p99_s * 1e3:.1f} ms vs stable {baseline.p99_s * 1e3:.1f} ms "
            f"(x{window.p99_s / baseline.p99_s:.2f}) at {_percent(canary)} breached the budget "
            f"of x{canary.max_p99_ratio:g}",
        )
    if elapsed_s < canary.every_s or window.requests < floor:
        return Verdict("hold")
    if canary.step + 1 >= len(canary.ramp):
        return Verdict(
            "promote",
            f"passed {len(canary.ramp)} steps up to {_percent(canary)} within budgets",
        )
    return Verdict("advance")


def apply(routing: pb.RoutingPolicy, verdict: Verdict, now_ms: int) -> pb.RoutingPolicy:
    """The policy after a verdict other than hold."""
    after = pb.RoutingPolicy()
    after.CopyFrom(routing)
    canary = after.canary
    canary.updated_ms = now_ms
    if verdict.action == "advance":
        canary.step += 1
        return _with_step_weights(after)
    winner = canary.version if verdict.action == "promote" else canary.baseline
    canary.state = pb.Canary.PROMOTED if verdict.action == "promote" else pb.Canary.ROLLED_BACK
    canary.reason = verdict.reason
    after.ClearField("weights")
    after.weights[winner] = 100.0
    after.labels.pop("canary", None)
    after.labels["stable"] = winner
    return after


def percent(canary: pb.Canary) -> float:
    """The canary's share of the split at its current step."""
    return canary.ramp[min(canary.step, len(canary.ramp) - 1)] if canary.ramp else 0.0


def _percent(canary: pb.Canary) -> str:
    return f"{percent(canary):g} %"


def _with_step_weights(routing: pb.RoutingPolicy) -> pb.RoutingPolicy:
    canary = routing.canary
    share = percent(canary)
    routing.ClearField("weights")
    routing.weights[canary.version] = share
    if not math.isclose(share, 100.0):
        routing.weights[canary.baseline] = 100.0 - share
    routing.labels["stable"] = canary.baseline
    routing.labels["canary"] = canary.version
    return routing
