"""CLI argument handling: clear one-line errors and exit codes, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
