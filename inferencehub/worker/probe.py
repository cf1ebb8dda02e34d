"""Both ends of the provider probe: a short-lived `inferencehub probe-provider` child opens a
model on one execution provider and runs it once, so a driver that crashes or hangs takes down
the probe, not the worker.

The parent side (`probe_command`, `run_probe`) and the child side (`probe_here`) share one
contract (argv in, a last stdout line of JSON {"ok": bool, "error": str} out), so they live
together; providers.py decides when to probe and imports this, never the other way round.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

from inferencehub.errors import first_line
from inferencehub.runtime import self_command
from inferencehub.worker.signature import session_feeds

CPU = "CPUExecutionProvider"  # never probed; the fallback under every accelerator


def probe_command(provider: str, path: Path, provider_options: Mapping[str, str]) -> list[str]:
    """The argv that probes `provider` on the model at `path` (frozen-aware)."""
    return self_command(
        "probe-provider",
        "--provider",
        provider,
        "--model",
        str(path),
        "--options",
        json.dumps(dict(provider_options)),
    )


def run_probe(command: Sequence[str], timeout_s: float) -> str | None:
    """Run a probe command: None if the provider works, else why not (a crash, a timeout, a
    fallback). Its last stdout line is JSON {"ok": bool, "error": str}."""
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout_s:g} s"
    except OSError as exc:
        return f"cannot start the probe: {exc}"
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {}
    if done.returncode < 0:
        return f"the probe was killed by signal {-done.returncode} (a driver crash?)"
    if answer.get("ok") is True:
        return None
    error = answer.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"{error} (exit code {done.returncode})"


def probe_here(provider: str, path: Path, provider_options: dict[str, str]) -> dict[str, Any]:
    """The probe's own work (in the child): open the model, check the provider, run once."""
    try:
        session = ort.InferenceSession(str(path), providers=[(provider, provider_options), CPU])
    except Exception as exc:
        return {"ok": False, "error": first_line(exc)}
    real = session.get_providers()[0]
    if real != provider:
        return {"ok": False, "error": f"ONNX Runtime fell back to {real}"}
    feeds = session_feeds(session)
    try:
        if feeds is not None:
            session.run(None, feeds)
    except Exception as exc:  # zeros need not be valid input: the provider still works
        return {"ok": True, "provider": real, "note": f"synthetic run failed: {first_line(exc)}"}
    return {"ok": True, "provider": real}
