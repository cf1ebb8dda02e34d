"""How the CLI shows results: rich tables for people, plain dicts for --json."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from inferencehub.client import PredictResult
from inferencehub.protocol.datatypes import datatype_of

PREVIEW_VALUES = 8


def result_to_json(result: PredictResult) -> dict[str, Any]:
    return {
        "model_name": result.model_name,
        "version": result.version,
        "request_id": result.request_id,
        "latency_ms": round(result.latency_ms, 3),
        "timing": result.timing,
        "classifications": [
            [{"index": c.index, "label": c.label, "score": c.score} for c in row]
            for row in result.classifications
        ],
        "outputs": {
            name: {"datatype": datatype_of(a), "shape": list(a.shape), "data": _values(a)}
            for name, a in result.outputs.items()
        },
    }


def _values(array: np.ndarray) -> list[Any]:
    values = array.reshape(-1).tolist()
    if array.dtype.kind == "O":  # BYTES: bytes over gRPC, already text over HTTP
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return values


def render_result(result: PredictResult) -> Group:
    header = Text.assemble(
        (result.model_name, "bold"),
        f" version {result.version}  ",
        (f"{result.latency_ms:.1f} ms", "cyan"),
        f" (inference {result.timing.get('inference_ms', 0.0):.1f} ms)",
    )
    parts: list[Any] = [header]
    for i, row in enumerate(result.classifications):
        table = Table(
            title=f"item {i}" if len(result.classifications) > 1 else None, title_justify="left"
        )
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column("score", justify="right")
        for rank, c in enumerate(row, 1):
            table.add_row(str(rank), c.label, f"{c.score:.4f}")
        parts.append(table)
    if not result.classifications:
        table = Table()
        for column in ("output", "dtype", "shape", "values"):
            table.add_column(column)
        for name, array in result.outputs.items():
            table.add_row(name, datatype_of(array), str(list(array.shape)), _preview(array))
        parts.append(table)
    return Group(*parts)


def _preview(array: np.ndarray) -> str:
    flat = array.reshape(-1)
    shown = ", ".join(str(v) for v in flat[:PREVIEW_VALUES].tolist())
    return f"[{shown}{', ...' if flat.size > PREVIEW_VALUES else ''}]"


def render_models(models: list[dict[str, Any]]) -> Table:
    table = Table(title="models", title_justify="left")
    for column in ("name", "version", "state", "provider", "inputs", "outputs"):
        table.add_column(column)
    for model in models:
        for v in model["versions"]:
            default = v["version"] == model["default_version"]
            state = v["state"] if v["state"] == "READY" else f"[red]{v['state']}[/]: {v['error']}"
            inputs = "\n".join(_spec(s) for s in v["inputs"])
            if "image" in v:
                inputs += f"\n(image {v['image']['height']}x{v['image']['width']})"
            table.add_row(
                model["name"],
                v["version"] + (" *" if default else ""),
                state,
                v["provider"],
                inputs,
                "\n".join(_spec(s) for s in v["outputs"]),
            )
    table.caption = "* default version"
    return table


def _spec(spec: dict[str, Any]) -> str:
    return f"{spec['name']} {spec['datatype']} {spec['shape']}"


def render_status(snapshot: dict[str, Any], now: float) -> Group:
    """One frame of `inferencehub status`: processes, then every version with its traffic."""
    supervisor = snapshot.get("supervisor") or {}
    processes = Table(title="processes", title_justify="left")
    for column in ("role", "pid", "state", "uptime", "restarts", "last exit"):
        processes.add_column(column)
    for p in supervisor.get("processes", []):
        started = p.get("started_at")
        processes.add_row(
            p["role"],
            str(p.get("pid") or "-"),
            p["state"],
            f"{now - started:.0f} s" if started else "-",
            str(p.get("restarts", 0)),
            f"{p['last_exit_code']} ({p['last_exit_reason']})"
            if p.get("last_exit_code") is not None
            else "-",
        )
    traffic = {(t["name"], t["version"]): t for t in snapshot.get("traffic", [])}
    versions = Table(title="models and traffic (since the gateway started)", title_justify="left")
    for column in ("model", "version", "state", "route", "requests", "errors", "p50", "p99"):
        versions.add_column(
            column, justify="right" if column in ("requests", "p50", "p99") else "left"
        )
    versions.add_column("shadow")
    notes: list[Text] = []
    for model in snapshot.get("models", []):
        routing = model.get("routing", {})
        for v in model["versions"]:
            seen = traffic.get((model["name"], v["version"]), {})
            requests = seen.get("requests", 0)
            route = (
                [f"{routing['split'][v['version']]:g} %"]
                if v["version"] in routing.get("split", {})
                else []
            )
            route += [
                k for k, target in routing.get("labels", {}).items() if target == v["version"]
            ]
            if not routing.get("split") and v["version"] == model["default_version"]:
                route.append("default")
            versions.add_row(
                model["name"],
                v["version"],
                v["state"] if v["state"] == "READY" else f"[red]{v['state']}[/]",
                ", ".join(route),
                str(requests),
                f"{seen['errors']} ({seen['error_rate']:.1%})" if requests else "-",
                f"{seen['latency']['p50_ms']:.1f} ms" if requests else "-",
                f"{seen['latency']['p99_ms']:.1f} ms" if requests else "-",
                f"{seen['shadow_requests']} runs, {seen['shadow_mismatches']} differ, "
                f"{seen['shadow_errors']} failed"
                if seen.get("shadow_requests")
                else "",
            )
        rollout = routing.get("canary")
        if rollout:
            notes.append(Text(f"{model['name']}: {describe_canary(rollout)}"))
        if routing.get("shadow"):
            shadow = routing["shadow"]
            notes.append(
                Text(f"{model['name']}: {shadow['fraction']:.1%} mirrored to {shadow['version']}")
            )
    serving = "serving" if snapshot.get("worker_serving") else "[red]worker not serving[/]"
    return Group(
        Text.from_markup(f"{snapshot.get('url', '')}  {serving}"), processes, versions, *notes
    )


def describe_canary(rollout: dict[str, Any]) -> str:
    """A rollout in one line: where it stands, or how it ended and why."""
    head = f"canary {rollout['version']} vs {rollout['baseline']}: "
    if rollout["state"] == "RUNNING":
        return head + (
            f"at {rollout['percent']:g} % (step {rollout['step'] + 1}/{len(rollout['ramp'])}, "
            f"{rollout['every_s']:g} s each; budgets: errors <= {rollout['max_error_rate']:.1%},"
            f" p99 <= x{rollout['max_p99_ratio']:g})"
        )
    return head + f"{rollout['state'].lower().replace('_', ' ')}: {rollout['reason']}"
