"""How the CLI shows results: rich tables for people, plain dicts for --json."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from inferencehub.client import PredictResult
from inferencehub.protocol.datatypes import datatype_of
from inferencehub.status_view import describe_canary as describe_canary  # for `route`

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
