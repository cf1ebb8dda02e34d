"""Process plumbing: child argv (source, frozen), the private runtime dir, a lean supervisor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferencehub.errors import ConfigError
from inferencehub.runtime import MAX_UDS_PATH_BYTES, RuntimeDir, self_command


def test_self_command_from_source_uses_python_m() -> None:
    assert self_command("worker", "--x") == [sys.executable, "-m", "inferencehub", "worker", "--x"]


def test_self_command_when_frozen_reexecs_the_binary(monkeypatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert self_command("gateway") == [sys.executable, "gateway"]


def test_fresh_runtime_dir_is_private_and_removed(monkeypatch, uds_dir: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(uds_dir))
    with RuntimeDir.create() as runtime:
        assert runtime.path.parent == uds_dir
        assert runtime.path.stat().st_mode & 0o777 == 0o700
        assert runtime.worker_address == f"unix://{runtime.path}/worker.sock"
        (runtime.path / "worker.sock").touch()
    assert not runtime.path.exists()


def test_given_runtime_dir_must_be_private(uds_dir: Path) -> None:
    shared = uds_dir / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(ConfigError, match="must be private"), RuntimeDir.create(shared):
        pass


def test_given_runtime_dir_keeps_itself_but_loses_our_files(uds_dir: Path) -> None:
    mine = uds_dir / "mine"
    mine.mkdir(mode=0o700)
    with RuntimeDir.create(mine) as runtime:
        runtime.settings_file.write_text("{}")
    assert mine.is_dir()
    assert not (mine / "settings.json").exists()


def test_socket_path_length_is_guarded(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_UDS_PATH_BYTES - len(os.fsencode(tmp_path))))
    with pytest.raises(ConfigError, match="over 103 bytes"):
        _ = RuntimeDir(deep).worker_address


def test_supervisor_and_cli_import_neither_grpc_nor_onnxruntime() -> None:
    code = (
        "import sys, inferencehub.cli, inferencehub.supervisor.supervisor;"
        "heavy = {'grpc', 'onnxruntime'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
