"""Execution-provider selection with a faked list of available providers and faked sessions
(this machine has no GPU), plus the real CPU path and a real probe subprocess."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from inferencehub.errors import ConfigError
from inferencehub.worker import providers
from inferencehub.worker.probe import run_probe
from inferencehub.worker.providers import ProviderOptions, candidates, select
from tests.model_builders import scale_model

CUDA, TRT, COREML, CPU = (
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)


class FakeSession:
    """Says it runs on `runs_on`; a run takes `run_s` seconds."""

    def __init__(self, runs_on: str, run_s: float = 0.0) -> None:
        self.runs_on = runs_on
        self.run_s = run_s

    def get_providers(self) -> list[str]:
        return [self.runs_on, CPU] if self.runs_on != CPU else [CPU]

    def run(self, outputs: Any, feeds: Any) -> list[np.ndarray]:
        time.sleep(self.run_s)
        return []


class Factory:
    """Opens FakeSessions; `falls_back` lists providers that silently end up on the CPU."""

    def __init__(self, falls_back: set[str] = frozenset(), run_s: dict[str, float] | None = None):
        self.falls_back = falls_back
        self.run_s = run_s or {}
        self.asked: list[list[Any]] = []

    def __call__(self, path: str, options: Any, asked: list[Any]) -> FakeSession:
        self.asked.append(asked)
        first = asked[0][0] if isinstance(asked[0], tuple) else asked[0]
        runs_on = CPU if first in self.falls_back else first
        return FakeSession(runs_on, self.run_s.get(runs_on, 0.0))


def probe_ok(provider: str, path: Path, settings: ProviderOptions) -> str | None:
    return None


def choose(choice: str, available: list[str], factory: Factory, **kwargs: Any) -> Any:
    return select(
        Path("model.onnx"),
        ort.SessionOptions(),
        2,
        choice,
        available=available,
        session_factory=factory,
        probe=kwargs.pop("probe", probe_ok),
        synthetic=lambda session: {"x": np.zeros(1, np.float32)},
        **kwargs,
    )


def test_auto_orders_accelerators_first_and_the_cpu_last() -> None:
    order = candidates("auto", [CPU, "OpenVINOExecutionProvider", COREML, CUDA, TRT], "fallback")
    assert order == [TRT, CUDA, COREML, "OpenVINOExecutionProvider", CPU]
    chosen = choose("auto", [CPU, CUDA], Factory())
    assert chosen.provider == CUDA and chosen.notes == []
    assert len(chosen.sessions) == 2


def test_a_silent_fallback_is_reported_and_the_next_provider_used() -> None:
    chosen = choose("auto", [CUDA, CPU], Factory(falls_back={CUDA}))
    assert chosen.provider == CPU
    assert all(s.get_providers()[0] == CPU for s in chosen.sessions)
    assert "asked for CUDAExecutionProvider but ONNX Runtime fell back to CPU" in chosen.notes[0]


def test_a_provider_that_fails_its_probe_is_skipped_with_the_reason() -> None:
    def crash(provider: str, path: Path, settings: ProviderOptions) -> str | None:
        return "the probe was killed by signal 11 (a driver crash?)" if provider == TRT else None

    chosen = choose("auto", [TRT, CUDA, CPU], Factory(), probe=crash)
    assert chosen.provider == CUDA
    assert chosen.notes == [
        "TensorrtExecutionProvider failed its probe: the probe was killed by signal 11 "
        "(a driver crash?)"
    ]


def test_the_cpu_is_never_probed() -> None:
    probed: list[str] = []

    def record(provider: str, path: Path, settings: ProviderOptions) -> str | None:
        probed.append(provider)
        return None

    choose("auto", [CUDA, CPU], Factory(falls_back={CUDA}), probe=record)
    assert probed == [CUDA]


def test_strict_refuses_a_missing_provider_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"not in this onnxruntime build.*onnxruntime-gpu"):
        choose("cuda", [CPU], Factory(), policy="strict")


def test_strict_refuses_a_fallback() -> None:
    with pytest.raises(ConfigError, match=r"strict.*fell back to CPUExecutionProvider"):
        choose("cuda", [CUDA, CPU], Factory(falls_back={CUDA}), policy="strict")


def test_fallback_policy_uses_the_cpu_and_says_why() -> None:
    chosen = choose("cuda", [CPU], Factory(), policy="fallback")
    assert chosen.provider == CPU
    assert "CUDAExecutionProvider is not in this onnxruntime build" in chosen.notes[0]


def test_an_unknown_provider_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'gpu'"):
        candidates("gpu", [CPU], "fallback")


def test_measure_keeps_the_fastest_and_records_the_timings() -> None:
    slow_cuda = Factory(run_s={CUDA: 0.02, CPU: 0.001})
    chosen = choose("measure", [CUDA, CPU], slow_cuda)
    assert chosen.provider == CPU  # an accelerator is not always faster
    assert chosen.timings_ms[CUDA] > chosen.timings_ms[CPU]
    assert "CPUExecutionProvider is the fastest" in chosen.notes[-1]


def test_provider_options_reach_the_session() -> None:
    factory = Factory()
    choose("auto", [CUDA, CPU], factory, provider_options=ProviderOptions(cuda_device_id=3))
    assert factory.asked[0] == [(CUDA, {"device_id": "3"}), CPU]
    coreml = ProviderOptions(coreml_compute_units="CPUAndNeuralEngine").for_provider(COREML)
    assert coreml == {"MLComputeUnits": "CPUAndNeuralEngine"}


def test_a_real_cpu_session(tmp_path: Path) -> None:
    path = scale_model(tmp_path / "m.onnx", [1, 2])
    chosen = select(path, ort.SessionOptions(), 1, "auto")
    assert chosen.provider == CPU  # this machine's onnxruntime has no GPU provider
    assert chosen.sessions[0].get_providers() == [CPU]
    out = chosen.sessions[0].run(None, {"x": np.ones((1, 2), np.float32)})[0]
    assert out.tolist() == [[1, 2]]


def test_a_real_probe_subprocess(tmp_path: Path) -> None:
    path = scale_model(tmp_path / "m.onnx", [1, 2])
    assert providers.probe_in_subprocess(CPU, path, ProviderOptions()) is None
    missing = providers.probe_in_subprocess(CUDA, path, ProviderOptions())
    assert missing is not None and "exit code 1" in missing


def test_a_crashing_or_hanging_probe_never_takes_the_caller_down() -> None:
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    assert run_probe(crash, 10) == "the probe was killed by signal 11 (a driver crash?)"
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    assert run_probe(hang, 0.5) == "no answer within 0.5 s"
    refused = [sys.executable, "-c", 'print(\'{"ok": false, "error": "no device"}\'); exit(1)']
    assert run_probe(refused, 10) == "no device (exit code 1)"
