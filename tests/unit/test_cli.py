"""CLI argument handling: clear one-line errors and exit codes, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from inferencehub import __version__
from inferencehub.cli import app
from tests.hub import free_tcp_port

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_predict_needs_an_image_or_inputs() -> None:
    result = runner.invoke(app, ["predict", "--model", "m"])
    assert result.exit_code == 2
    assert "give either an image file or --input" in result.output


def test_predict_rejects_a_missing_image_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path / "no.jpg"), "--model", "m"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_predict_input_must_be_name_equals_npy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", "--model", "m", "--input", "x.npy"])
    assert result.exit_code == 2
    assert "--input expects NAME=file.npy" in result.output


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros(2, np.float32))
    url = f"http://127.0.0.1:{free_tcp_port()}"
    result = runner.invoke(
        app, ["predict", "--model", "m", "--input", f"x={tmp_path / 'x.npy'}", "--url", url]
    )
    assert result.exit_code == 1
    assert f"cannot reach InferenceHub at {url}" in result.output
    assert "Traceback" not in result.output


def test_unsupported_url_scheme() -> None:
    result = runner.invoke(app, ["models", "--url", "ftp://x"])
    assert result.exit_code == 2
    assert "unsupported URL" in result.output


def test_up_with_bad_config_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[gateway]\nport = 1\n")
    result = runner.invoke(app, ["up", "--config", str(config)])
    assert result.exit_code == 2
    assert "invalid setting gateway.port" in result.output


class FakeHub:
    """The SDK client `route` talks to: a model whose rollout is in `state`."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.changes: list[dict[str, Any]] = []

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def model(self, name: str) -> dict[str, Any]:
        routing = {
            "split": {"1": 90.0, "2": 10.0},
            "labels": {"stable": "1"},
            "sticky": True,
            "canary": {"version": "2", "baseline": "1", "state": self.state},
        }
        versions = [{"version": "1"}, {"version": "2"}]
        return {"name": name, "versions": versions, "default_version": "2", "routing": routing}

    def set_routing(self, name: str, **change: Any) -> dict[str, Any]:
        self.changes.append(change)
        return self.model(name)

    def traffic(self, name: str) -> list[dict[str, Any]]:
        return []


def fake_hub(monkeypatch: pytest.MonkeyPatch, state: str) -> FakeHub:
    import inferencehub.client

    hub = FakeHub(state)
    monkeypatch.setattr(inferencehub.client, "connect", lambda url, **_: hub)
    return hub


def test_route_merges_a_label_into_the_current_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = fake_hub(monkeypatch, "RUNNING")
    result = runner.invoke(app, ["route", "m", "--label", "beta=2"])
    assert result.exit_code == 0, result.output
    assert hub.changes == [
        {
            "split": {"1": 90.0, "2": 10.0},
            "labels": {"stable": "1", "beta": "2"},
            "sticky": True,
            "shadow": None,
            "canary": hub.model("m")["routing"]["canary"],
        }
    ]
    assert "m routing" in result.output


def test_route_wait_gives_up_after_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub(monkeypatch, "RUNNING")
    result = runner.invoke(app, ["route", "m", "--wait", "--timeout", "1ms"])
    assert result.exit_code == 124
    assert "m routing" in result.output  # the last look is still shown
    assert "the rollout of m is still running after --timeout 1ms" in result.output
    assert "Traceback" not in result.output


def test_route_wait_exits_1_after_a_rollback(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub(monkeypatch, "ROLLED_BACK")
    result = runner.invoke(app, ["route", "m", "--wait"])
    assert result.exit_code == 1
    assert "rolled back" in result.output


@pytest.mark.parametrize(
    ("timeout", "problem"),
    [("0", "--timeout must be longer than 0"), ("soon", "--timeout takes a duration")],
)
def test_route_wait_timeout_must_be_a_positive_duration(timeout: str, problem: str) -> None:
    result = runner.invoke(app, ["route", "m", "--wait", "--timeout", timeout])
    assert result.exit_code == 2
    assert problem in result.output


def test_url_defaults_to_the_sdk_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import inferencehub.client

    seen: list[str] = []

    def connect(url: str, **_: Any) -> FakeHub:
        seen.append(url)
        return FakeHub("PROMOTED")

    monkeypatch.delenv("INFERENCEHUB_URL", raising=False)
    monkeypatch.setattr(inferencehub.client, "connect", connect)
    assert runner.invoke(app, ["route", "m"]).exit_code == 0
    monkeypatch.setenv("INFERENCEHUB_URL", "grpc://h:1")
    assert runner.invoke(app, ["route", "m"]).exit_code == 0
    assert seen == [inferencehub.client.DEFAULT_URL, "grpc://h:1"]


def test_importing_the_cli_loads_no_sdk() -> None:
    """Every hub process (the long-lived supervisor too) imports the CLI: it stays light."""
    code = (
        "import sys, inferencehub.cli;"
        "heavy = {'httpx', 'numpy', 'inferencehub.client'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
