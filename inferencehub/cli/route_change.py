"""The rules behind `inferencehub route`, apart from typer and the network so they are tested in
process: parsing its small value syntaxes, merging a change into the current policy, and
following a rollout until it ends or a deadline passes.

Policies are in their JSON form, as the SDK's `model()` returns them and `set_routing()`
takes them (protocol/routing_codec.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RUNNING = "RUNNING"
ROLLED_BACK = "ROLLED_BACK"
POLL_S = 1.0


class UsageError(ValueError):
    """A value on the command line that does not parse; the command exits 2 with it."""


class RolloutStillRunning(Exception):
    """The rollout had not ended when the wait's deadline passed; `info` is the last look."""

    def __init__(self, info: dict[str, Any], timeout_s: float) -> None:
        super().__init__(f"rollout still running after {timeout_s:g} s")
        self.info = info
        self.timeout_s = timeout_s


def parse_pair(text: str, shape: str) -> tuple[str, str]:
    """KEY=VALUE (spaces around either trimmed)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise UsageError(f"expected {shape}, got {text!r}")
    return key.strip(), value.strip()


def parse_number(text: str, problem: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(problem) from None


def parse_fraction(text: str, option: str) -> float:
    """0.05 or 5% -> 0.05."""
    text = text.strip()
    value = parse_number(text.rstrip("%"), f"{option} takes a fraction (0.05) or a percentage (5%)")
    return value / 100 if text.endswith("%") else value


def parse_duration(text: str, option: str) -> float:
    """30s, 2m, 1h, 500ms or plain seconds."""
    problem = f"{option} takes a duration: 30s, 2m, 1h"
    for suffix, seconds in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return parse_number(text[: -len(suffix)], problem) * seconds
    return parse_number(text, problem)


def parse_shadow(text: str) -> dict[str, Any]:
    """VERSION:FRACTION (3:0.05 or 3:5%) as the policy's shadow."""
    version, _, fraction = text.partition(":")
    return {"version": version, "fraction": parse_fraction(fraction, "--shadow")}


@dataclass(frozen=True)
class RouteChange:
    """What one `route` invocation asks for, parsed; nothing asked means show the policy."""

    split: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    promote: str | None = None
    shadow: dict[str, Any] | None = None
    no_shadow: bool = False
    not_sticky: bool = False
    reset: bool = False
    canary: dict[str, Any] | None = None  # a new rollout (client.canary_request)


def merge_policy(current: Mapping[str, Any], change: RouteChange) -> dict[str, Any] | None:
    """The `set_routing` keyword arguments that apply `change` to the `current` policy, or
    None when it changes nothing.

    A new rollout or a reset replaces the policy. Anything else merges in: labels add to the
    current ones, the split and shadow are kept unless given, `--promote V` is the split
    {V: 100} plus the label stable=V. A new split (promote included) turns stickiness back on
    and ends a running rollout; other changes keep it going.
    """
    if change.canary is not None:
        return {"canary": change.canary}
    if change.reset:
        return {"reset": True}
    split, labels = dict(change.split), dict(change.labels)
    changes = split or labels or change.promote is not None or change.shadow is not None
    if not (changes or change.no_shadow or change.not_sticky):
        return None
    if change.promote is not None:
        labels["stable"] = change.promote
        split = {change.promote: 100.0}
    shadow = None if change.no_shadow else current.get("shadow")
    if change.shadow is not None:
        shadow = change.shadow
    running = current.get("canary") or {}
    return {
        "split": split or current["split"],
        "labels": {**current["labels"], **labels},
        "sticky": False if change.not_sticky else (True if split else current["sticky"]),
        "shadow": shadow,
        "canary": running if running.get("state") == RUNNING and not split else None,
    }


def rollout_state(info: Mapping[str, Any]) -> str | None:
    """RUNNING, PROMOTED or ROLLED_BACK for a model's metadata; None without a rollout."""
    state = (info["routing"].get("canary") or {}).get("state")
    return None if state is None else str(state)


def wait_for_rollout(
    fetch: Callable[[], dict[str, Any]],
    info: dict[str, Any],
    *,
    timeout_s: float,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll `fetch` (the model's metadata) until its rollout is no longer running.

    Looks once more at the deadline, so a rollout that ends in its last second counts.

    Raises:
        RolloutStillRunning: still running `timeout_s` after the call.
    """
    deadline = clock() + timeout_s
    while rollout_state(info) == RUNNING:
        left = deadline - clock()
        if left <= 0:
            raise RolloutStillRunning(info, timeout_s)
        sleep(min(poll_s, left))
        info = fetch()
    return info
