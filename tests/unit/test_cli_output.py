"""--json output uses protocol datatype names and handles text from either transport."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

from inferencehub.cli.output import (
    render_keys,
    render_result,
    render_routing,
    render_tuning,
    result_to_json,
)
from inferencehub.client import PredictResult


def result(outputs: dict[str, np.ndarray]) -> PredictResult:
    return PredictResult("m", "1", "r", outputs, [], {"inference_ms": 1.0}, 2.0)


def test_bytes_outputs_from_http_and_grpc_both_print_as_text() -> None:
    http = result_to_json(result({"s": np.array(["a", "b"], dtype=object)}))
    grpc = result_to_json(result({"s": np.array([b"a", b"b"], dtype=object)}))
    assert (
        http["outputs"]["s"]
        == grpc["outputs"]["s"]
        == {"datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
    )


def test_numeric_outputs_use_v2_datatypes() -> None:
    payload = result_to_json(result({"y": np.zeros((1, 2), np.float32)}))
    assert payload["outputs"]["y"]["datatype"] == "FP32"


def test_table_previews_long_outputs() -> None:
    console = Console(width=100, color_system=None, file=None)
    with console.capture() as captured:
        console.print(render_result(result({"y": np.arange(20, dtype=np.int64)})))
    text = captured.get()
    assert "m version 1" in text
    assert "INT64" in text
    assert "0, 1, 2, 3, 4, 5, 6, 7, ..." in text


def test_the_tuning_table_shows_each_trial_and_the_choice() -> None:
    trial = {"instances": 1, "intra_op_threads": 2, "batch": 1, "items_per_s": 100.0}
    faster = {"instances": 2, "intra_op_threads": 1, "batch": 1, "items_per_s": 180.0}
    model = {
        "name": "squeezenet",
        "versions": [
            {
                "version": "1",
                "instances": 2,
                "max_batch_size": 64,
                "tuning": {
                    "source": "measured",
                    "reason": "2 x 1 threads: 180/s at batch 1",
                    "intra_op_threads": 1,
                    "batch_cap": 1,
                    "spent_ms": 2100.0,
                    "session_mb": 115.4,
                    "trials": [trial, faster],
                },
            },
            {"version": "2", "state": "FAILED"},  # no tuning: not shown
        ],
    }
    console = Console(width=200, record=True)
    console.print(render_tuning(model))
    text = console.export_text()
    assert "2 x 1 threads" in text and "batches up to 1" in text
    assert "measured in 2.1 s" in text and "~115 MB a session" in text
    assert "2 x 1, batch 1: 180.0/s (fastest)" in text
    assert "1 x 2, batch 1: 100.0/s" in text and "100.0/s (fastest)" not in text


def cells(text: str, first: str) -> list[str]:
    """The cells of the table row that starts with `first`."""
    rows = ([c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines())
    return next(row for row in rows if row[:1] == [first])


def test_the_routing_view_shows_weights_traffic_shadow_and_rollout() -> None:
    info = {
        "versions": [{"version": "10"}, {"version": "2"}],
        "default_version": "10",
        "routing": {
            "split": {"2": 95.0, "10": 5.0},
            "labels": {"stable": "2", "canary": "10"},
            "shadow": {"version": "10", "fraction": 0.05},
            "canary": {"version": "10", "baseline": "2", "state": "RUNNING", "percent": 5},
        },
    }
    seen = {
        "version": "2",
        "requests": 3,
        "error_rate": 0.0,
        "latency": {"p50_ms": 1.0, "p99_ms": 2.5},
        "shadow_requests": 2,
        "shadow_mismatches": 1,
        "shadow_errors": 0,
    }
    console = Console(width=200, record=True)
    for part in render_routing("m", info, [seen]):
        console.print(part)
    text = console.export_text()
    shown = ["2", "95", "stable", "3", "100.0%", "0.0%", "1.0 ms", "2.5 ms"]
    assert cells(text, "2") == [*shown, "2: 1 differ, 0 failed"]
    assert cells(text, "10") == ["10", "5", "canary", "0", "0.0%", "-", "-", "-", ""]
    assert text.index("m routing") < text.index("shadow: 5.0% of requests mirrored to 10")
    assert "canary 10 vs 2" in text


def test_the_keys_table_never_shows_secrets() -> None:
    rows = [
        {"name": "ci", "created_at": 1.0, "rate_per_s": 50.0, "models": ["m"]},
        {"name": "ops", "created_at": 2.0, "rate_per_s": None, "models": None},
    ]
    console = Console(width=120, record=True)
    console.print(render_keys(rows, Path("/keys.json")))
    text = console.export_text()
    assert "API keys (/keys.json)" in text
    assert cells(text, "ci") == ["ci", "50/s", "m"]
    assert cells(text, "ops") == ["ops", "-", "all"]
