"""Which ONNX Runtime execution provider runs a model: asked for, probed, verified, measured.

ONNX Runtime silently falls back to the CPU when a GPU provider cannot start (missing CUDA
libraries, no device), so the provider a session really uses is read back from
`session.get_providers()` and reported; never the one that was asked for. GPU providers are
first tried in a short-lived subprocess (`inferencehub probe-provider`, probe.py), so a driver
that crashes takes down the probe, not the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from inferencehub.errors import ConfigError
from inferencehub.worker.probe import CPU, probe_command, run_probe

logger = logging.getLogger(__name__)

# `auto` tries what is available in this order: accelerators first, the CPU last.
PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    CPU,
)
ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": CPU,
}
ProviderChoice = Literal[
    "auto", "measure", "tensorrt", "cuda", "coreml", "directml", "openvino", "cpu"
]
ProviderPolicy = Literal["fallback", "strict"]
MEASURE_RUNS = 5


@dataclass(frozen=True)
class ProviderOptions:
    """Per-provider settings that matter in practice; everything else keeps ORT's default."""

    cuda_device_id: int = 0
    coreml_compute_units: str = "ALL"  # ALL | CPUAndGPU | CPUAndNeuralEngine | CPUOnly
    openvino_device_type: str = "CPU"
    probe_timeout_s: float = 60.0

    def for_provider(self, provider: str) -> dict[str, str]:
        if provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
            return {"device_id": str(self.cuda_device_id)}
        if provider == "CoreMLExecutionProvider":
            return {"MLComputeUnits": self.coreml_compute_units}
        if provider == "OpenVINOExecutionProvider":
            return {"device_type": self.openvino_device_type}
        return {}


@dataclass
class Selection:
    """What was chosen, and why the preferred providers were not."""

    sessions: list[Any]
    provider: str
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


SessionFactory = Callable[[str, ort.SessionOptions, list[Any]], Any]
Probe = Callable[[str, Path, ProviderOptions], str | None]


def _ort_session(path: str, options: ort.SessionOptions, providers: list[Any]) -> Any:
    return ort.InferenceSession(path, options, providers=providers)


def candidates(choice: str, available: Sequence[str], policy: ProviderPolicy) -> list[str]:
    """Providers to try, best first.

    Raises:
        ConfigError: strict policy and the asked provider is not in this onnxruntime build.
    """
    if choice in ("auto", "measure"):
        return [p for p in PREFERENCE if p in available] or [CPU]
    wanted = ALIASES.get(choice)
    if wanted is None:
        raise ConfigError(
            f"unknown provider {choice!r}; use auto, measure or one of {', '.join(ALIASES)}"
        )
    if wanted in available:
        return [wanted] if policy == "strict" else list(dict.fromkeys([wanted, CPU]))
    why = f"{wanted} is not in this onnxruntime build (available: {', '.join(available)})"
    if policy == "strict":
        raise ConfigError(f"provider {choice!r} (strict): {why}; {_hint(wanted)}")
    return [CPU]


def select(
    path: Path,
    options: ort.SessionOptions,
    instances: int,
    choice: str = "auto",
    policy: ProviderPolicy = "fallback",
    provider_options: ProviderOptions | None = None,
    *,
    available: Sequence[str] | None = None,
    session_factory: SessionFactory = _ort_session,
    probe: Probe | None = None,
    synthetic: Callable[[Any], dict[str, np.ndarray] | None] | None = None,
) -> Selection:
    """Open `instances` sessions on the best provider that really works.

    Raises:
        ConfigError: strict policy and the asked provider is missing, fails its probe, or
            ONNX Runtime falls back from it; or no provider at all could open the model.
    """
    settings = provider_options or ProviderOptions()
    available = list(ort.get_available_providers() if available is None else available)
    probe = probe or probe_in_subprocess
    notes: list[str] = []
    if choice not in ("auto", "measure") and ALIASES.get(choice) not in available:
        notes.append(
            f"{ALIASES.get(choice, choice)} is not in this onnxruntime build "
            f"(available: {', '.join(available)}); {_hint(ALIASES.get(choice, ''))}"
        )
    wanted = candidates(choice, available, policy)
    strict = policy == "strict" and choice not in ("auto", "measure")
    working: list[tuple[str, list[Any]]] = []
    for provider in wanted:
        sessions, why = _open(path, options, instances, provider, settings, session_factory, probe)
        if sessions is None:
            if strict:
                raise ConfigError(f"provider {choice!r} (strict): {why}")
            notes.append(why)
            continue
        working.append((provider, sessions))
        if choice != "measure":
            break
    if not working:
        raise ConfigError("no execution provider could open the model: " + "; ".join(notes))
    timings: dict[str, float] = {}
    if choice == "measure" and synthetic is not None:
        timings = {p: _time_runs(s[0], synthetic(s[0])) for p, s in working}
        measured = {p: t for p, t in timings.items() if t == t}  # NaN: could not be timed
        if measured:
            fastest = min(measured, key=lambda p: measured[p])
            working = [w for w in working if w[0] == fastest]
            notes.append(
                "measured "
                + ", ".join(f"{p} {t:.2f} ms" for p, t in measured.items())
                + f": {fastest} is the fastest"
            )
    provider, sessions = working[0]
    for note in notes:
        logger.warning("%s: %s", path, note)
    return Selection(sessions, provider, notes, timings)


def _open(
    path: Path,
    options: ort.SessionOptions,
    instances: int,
    provider: str,
    settings: ProviderOptions,
    session_factory: SessionFactory,
    probe: Probe,
) -> tuple[list[Any] | None, str]:
    """Sessions really running on `provider`, or None and why not."""
    if provider != CPU:
        failure = probe(provider, path, settings)
        if failure is not None:
            return None, f"{provider} failed its probe: {failure}"
    providers: list[Any] = [(provider, settings.for_provider(provider))]
    if provider != CPU:
        providers.append(CPU)  # nodes the accelerator cannot run
    sessions = [session_factory(str(path), options, providers) for _ in range(instances)]
    real = sessions[0].get_providers()[0]
    if real != provider:
        return None, (
            f"asked for {provider} but ONNX Runtime fell back to {real} ({_hint(provider)})"
        )
    return sessions, ""


def _time_runs(session: Any, feeds: dict[str, np.ndarray] | None) -> float:
    """Median milliseconds of a few runs after one warm-up; NaN when no input can be made."""
    if feeds is None:
        return float("nan")
    try:
        session.run(None, feeds)
        runs = []
        for _ in range(MEASURE_RUNS):
            started = time.perf_counter()
            session.run(None, feeds)
            runs.append((time.perf_counter() - started) * 1e3)
    except Exception as exc:  # synthetic zeros need not be valid input
        logger.warning("cannot time a run: %s", exc)
        return float("nan")
    return float(np.median(runs))


def _hint(provider: str) -> str:
    return {
        "CUDAExecutionProvider": "install onnxruntime-gpu and the CUDA 12 + cuDNN 9 libraries",
        "TensorrtExecutionProvider": "install onnxruntime-gpu with TensorRT's libraries",
        "CoreMLExecutionProvider": "CoreML runs on macOS with the standard onnxruntime wheel",
        "DmlExecutionProvider": "install onnxruntime-directml (Windows)",
        "OpenVINOExecutionProvider": "install onnxruntime-openvino",
    }.get(provider, "see docs/hardware.md")


def probe_in_subprocess(provider: str, path: Path, settings: ProviderOptions) -> str | None:
    """Open the model on `provider` and run it once in a child process (probe.py): None if
    that worked, else why not (a crash, a timeout, a fallback)."""
    command = probe_command(provider, path, settings.for_provider(provider))
    return run_probe(command, settings.probe_timeout_s)
