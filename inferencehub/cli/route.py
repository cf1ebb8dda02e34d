"""`inferencehub route`: show or change a model's routing live; the rules are in
route_change.py, this module parses options and talks to the server."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer

from inferencehub.cli.common import JsonOption, UrlOption, fail, hub, out
from inferencehub.cli.route_change import (
    ROLLED_BACK,
    RolloutStillRunning,
    RouteChange,
    UsageError,
    merge_policy,
    parse_duration,
    parse_fraction,
    parse_number,
    parse_pair,
    parse_shadow,
    rollout_state,
    wait_for_rollout,
)

WAIT_TIMEOUT_EXIT = 124  # as timeout(1): the rollout goes on, its outcome is not known yet


def route(
    name: Annotated[str, typer.Argument(help="Model name.")],
    weights: Annotated[
        list[str] | None, typer.Argument(help="New split, e.g. 1=90 2=10 (none: show).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="NAME=VERSION, e.g. canary=2.")
    ] = None,
    promote: Annotated[
        str | None, typer.Option(help="Send all traffic to this version and label it stable.")
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(help="VERSION:FRACTION, e.g. 3:0.05 or 3:5%: mirror requests, record only."),
    ] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Stop mirroring.")] = False,
    canary: Annotated[
        str | None, typer.Option(help="Start an automatic rollout of this version.")
    ] = None,
    ramp: Annotated[str, typer.Option(help="Canary percentages, one step each.")] = "5,25,50,100",
    every: Annotated[str, typer.Option(help="Time per step: 30s, 2m, 1h.")] = "2m",
    max_error_rate: Annotated[
        str, typer.Option(help="Roll back above this canary error rate.")
    ] = "1%",
    max_p99_ratio: Annotated[
        float, typer.Option(help="Roll back when canary p99 / stable p99 exceeds this.")
    ] = 1.5,
    min_requests: Annotated[
        int, typer.Option(help="Canary requests a step needs to advance and to compare p99s.")
    ] = 20,
    baseline: Annotated[
        str, typer.Option(help="Version the canary is compared with (default: stable label).")
    ] = "",
    wait: Annotated[
        bool, typer.Option(help="With --canary: follow it; exit 0 promoted, 1 rolled back.")
    ] = False,
    timeout: Annotated[
        str,
        typer.Option(
            help=f"With --wait: give up after this long (30s, 2m, 1h), exit {WAIT_TIMEOUT_EXIT}."
        ),
    ] = "1h",
    reset: Annotated[bool, typer.Option(help="Back to model.toml's [routing].")] = False,
    not_sticky: Annotated[
        bool, typer.Option("--not-sticky", help="Random choice even with a routing key.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or change, live, how requests reach a model's versions: split, labels, shadow,
    automatic canary. Changes merge into the current policy."""
    try:
        change = RouteChange(
            split={
                v: parse_number(w, "weights must be numbers, e.g. 1=90 2=10")
                for v, w in (parse_pair(w, "VERSION=WEIGHT") for w in weights or [])
            },
            labels=dict(parse_pair(item, "NAME=VERSION") for item in label or []),
            promote=promote,
            shadow=parse_shadow(shadow) if shadow is not None else None,
            no_shadow=no_shadow,
            not_sticky=not_sticky,
            reset=reset,
            canary=_rollout(
                canary, ramp, every, max_error_rate, max_p99_ratio, min_requests, baseline
            ),
        )
        wait_s = _wait_timeout(timeout) if wait else 0.0
    except UsageError as exc:
        fail(str(exc), 2)
    still_running = False
    with hub(url) as client:
        info = client.model(name)
        update = merge_policy(info["routing"], change)
        if update is not None:
            info = client.set_routing(name, **update)
        if wait:
            try:
                info = wait_for_rollout(partial(client.model, name), info, timeout_s=wait_s)
            except RolloutStillRunning as exc:
                info, still_running = exc.info, True
        traffic = client.traffic(name)
    _show(name, info, traffic, as_json)
    if still_running:
        fail(
            f"the rollout of {name} is still running after --timeout {timeout}; it goes on in "
            f"the gateway (`inferencehub route {name} --wait` follows it again)",
            WAIT_TIMEOUT_EXIT,
        )
    if wait and rollout_state(info) == ROLLED_BACK:
        raise typer.Exit(1)


def _rollout(
    version: str | None,
    ramp: str,
    every: str,
    max_error_rate: str,
    max_p99_ratio: float,
    min_requests: int,
    baseline: str,
) -> dict[str, Any] | None:
    """The new rollout --canary asks for, or None without it."""
    if version is None:
        return None
    from inferencehub.client import canary_request

    return canary_request(
        version,
        ramp=[
            parse_number(p.strip().rstrip("%"), "--ramp takes percentages, e.g. 5,25,50,100")
            for p in ramp.split(",")
        ],
        every_s=parse_duration(every, "--every"),
        max_error_rate=parse_fraction(max_error_rate, "--max-error-rate"),
        max_p99_ratio=max_p99_ratio,
        min_requests=min_requests,
        baseline=baseline,
    )


def _wait_timeout(text: str) -> float:
    seconds = parse_duration(text, "--timeout")
    if seconds <= 0:
        raise UsageError(f"--timeout must be longer than 0, got {text!r}")
    return seconds


def _show(name: str, info: dict[str, Any], traffic: list[dict[str, Any]], as_json: bool) -> None:
    from inferencehub.cli.output import render_routing, routing_to_json

    if as_json:
        out.print_json(data=routing_to_json(name, info, traffic))
        return
    for part in render_routing(name, info, traffic):
        out.print(part)
