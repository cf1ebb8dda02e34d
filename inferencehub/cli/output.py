"""How the CLI shows things: rich tables and text for people, plain dicts for --json.

Pure functions of what the server (or the key store) returned; no I/O. Loading it imports only
rich: `keys list` should not pay for numpy, and the helpers that render inference results
import what results need (numpy is loaded by then anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import numpy as np

    from inferencehub.client import PredictResult

PREVIEW_VALUES = 8


def result_to_json(result: PredictResult) -> dict[str, Any]:
    from inferencehub.protocol.datatypes import datatype_of

    described: dict[str, Any] = {
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
    if result.steps:
        described["steps"] = [{"name": name, "ms": round(ms, 3)} for name, ms in result.steps]
    lines = text_lines(result)
    if lines is not None:
        described["lines"] = lines
    return described


def text_lines(result: PredictResult) -> list[dict[str, Any]] | None:
    """A text-reading model's answer (outputs `text` [K], `boxes` [K, 4, 2], `scores` [K]) as
    one row a line; None for any other model."""
    text, boxes = result.outputs.get("text"), result.outputs.get("boxes")
    if text is None or boxes is None or text.ndim != 1 or boxes.shape[1:] != (4, 2):
        return None
    scores = result.outputs.get("scores")
    return [
        {
            "text": t.decode(errors="replace") if isinstance(t, bytes) else str(t),
            "score": float(scores[i]) if scores is not None else None,
            "box": [[round(float(x), 1), round(float(y), 1)] for x, y in boxes[i]],
        }
        for i, t in enumerate(text.tolist())
    ]


def _values(array: np.ndarray) -> list[Any]:
    values = array.reshape(-1).tolist()
    if array.dtype.kind == "O":  # BYTES: bytes over gRPC, already text over HTTP
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return values


def render_result(result: PredictResult) -> Group:
    from inferencehub.protocol.datatypes import datatype_of

    header = Text.assemble(
        (result.model_name, "bold"),
        f" version {result.version}  ",
        (f"{result.latency_ms:.1f} ms", "cyan"),
        f" (inference {result.timing.get('inference_ms', 0.0):.1f} ms)",
    )
    parts: list[Any] = [header]
    if result.steps:
        parts.append(
            Text(
                "steps: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in result.steps),
                style="dim",
            )
        )
    lines = text_lines(result)
    if lines is not None:
        parts.append(_render_lines(lines))
        return Group(*parts)
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


def _render_lines(lines: list[dict[str, Any]]) -> Table:
    table = Table()
    for column, justify in (("#", "right"), ("text", "left"), ("confidence", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("box (x, y corners)")
    for number, line in enumerate(lines, 1):
        score = "" if line["score"] is None else f"{line['score']:.3f}"
        corners = " ".join(f"{x:.0f},{y:.0f}" for x, y in line["box"])
        table.add_row(str(number), Text(line["text"]), score, corners)
    if not lines:
        table.add_row("", Text("no text found", style="dim"), "", "")
    return table


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
                image = v["image"]
                size = f" {image['height']}x{image['width']}" if image["height"] else ""
                inputs += f"\n(image{size})"
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


def render_tuning(model: dict[str, Any]) -> Table:
    """Each ready version's execution layout, how it was chosen, and what tuning measured."""
    table = Table(title=f"{model['name']}: execution layout", title_justify="left")
    for column in ("version", "layout", "chosen", "measured (instances x threads, batch)"):
        table.add_column(column)
    for v in model["versions"]:
        tuning = v.get("tuning")
        if tuning is None:
            continue
        cap = tuning["batch_cap"]
        layout = f"{v['instances']} x {tuning['intra_op_threads']} threads"
        if tuning["session_mb"]:
            layout += f"\n~{tuning['session_mb']:.0f} MB a session"
        if v["max_batch_size"]:
            layout += f"\nbatches up to {cap or v['max_batch_size']}"
        best = max((t["items_per_s"] for t in tuning["trials"]), default=0.0)
        measured = "\n".join(
            f"{t['instances']} x {t['intra_op_threads']}, batch {t['batch']}: "
            f"{t['items_per_s']:,.1f}/s" + (" (fastest)" if t["items_per_s"] == best else "")
            for t in tuning["trials"]
        )
        spent = f" in {tuning['spent_ms'] / 1e3:.1f} s" if tuning["source"] != "off" else ""
        chosen = f"{tuning['source']}{spent}\n{tuning['reason']}"
        table.add_row(v["version"], layout, chosen, measured or "-")
    return table


def _spec(spec: dict[str, Any]) -> str:
    return f"{spec['name']} {spec['datatype']} {spec['shape']}"


def routing_to_json(
    name: str, info: dict[str, Any], traffic: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "routing": info["routing"],
        "traffic": traffic,
        "default_version": info["default_version"],
    }


def render_routing(
    name: str, info: dict[str, Any], traffic: list[dict[str, Any]]
) -> list[RenderableType]:
    """The version table (weights, labels, observed traffic, shadow results), then a line each
    for a shadow and a rollout. A list, printed one by one, so each line looks as it always
    has."""
    from inferencehub.status_view import describe_canary

    routing = info["routing"]
    by_version = {t["version"]: t for t in traffic}
    total = sum(t["requests"] for t in traffic) or 1
    table = Table(title=f"{name} routing", title_justify="left")
    for column in ("version", "weight", "labels", "served", "share", "errors", "p50", "p99"):
        table.add_column(
            column, justify="left" if column in ("version", "labels") else "right", no_wrap=True
        )
    shadow = routing.get("shadow")
    if shadow:
        table.add_column("shadow", justify="right")
    for version in sorted({v["version"] for v in info["versions"]}, key=int):
        seen = by_version.get(version, {})
        requests = seen.get("requests", 0)
        weight = routing["split"].get(version)
        default = (
            " (default)" if not routing["split"] and version == info["default_version"] else ""
        )
        row = [
            version,
            f"{weight:g}" if weight is not None else "-" + default,
            ", ".join(k for k, v in routing["labels"].items() if v == version),
            str(requests),
            f"{requests / total:.1%}",
            f"{seen.get('error_rate', 0):.1%}" if requests else "-",
            f"{seen['latency']['p50_ms']:.1f} ms" if requests else "-",
            f"{seen['latency']['p99_ms']:.1f} ms" if requests else "-",
        ]
        if shadow:
            mirrored = seen.get("shadow_requests", 0)
            row.append(
                f"{mirrored}: {seen['shadow_mismatches']} differ, {seen['shadow_errors']} failed"
                if mirrored
                else ""
            )
        table.add_row(*row)
    parts: list[RenderableType] = [table]
    if shadow:
        parts.append(
            f"shadow: {shadow['fraction']:.1%} of requests mirrored to {shadow['version']}"
        )
    rollout = routing.get("canary")
    if rollout:
        parts.append(describe_canary(rollout))
    return parts


def render_keys(rows: list[dict[str, Any]], path: Path) -> Table:
    """API keys as `keys list` shows them: never the secrets (only hashes are stored)."""
    table = Table(title=f"API keys ({path})", title_justify="left")
    for column in ("name", "rate", "models"):
        table.add_column(column)
    for row in rows:
        rate_text = f"{row['rate_per_s']:g}/s" if row["rate_per_s"] else "-"
        table.add_row(row["name"], rate_text, ", ".join(row["models"] or ["all"]))
    return table


def render_bundle(summary: dict[str, Any]) -> Group:
    """`bundle verify`: who signed what, and every file with its size."""
    head = Text.assemble(
        ("verified ", "bold green"),
        f"{summary['model']} version(s) {', '.join(summary['versions'])}, signed by ",
        (summary["signer"], "bold"),
        f", created {summary['created']} (hub {summary['hub_version']})",
    )
    table = Table("file", "bytes", "sha256")
    for entry in summary["files"]:
        table.add_row(entry["path"], f"{entry['size']:,}", entry["sha256"][:16] + "…")
    table.add_row("total", f"{summary['total_bytes']:,}", "")
    return Group(head, table)


def describe_import(reply: dict[str, Any]) -> Text:
    """`models import` / `pull`: what was installed, and from whom."""
    signer = f"signed by {reply['signer']}" if reply.get("signer") else "unsigned .onnx"
    return Text(
        f"imported {reply['model']['name']} version(s) {', '.join(reply['versions'])} ({signer})"
    )
