"""models/build_efficientnet.py rebuilds the committed models byte for byte (needs PyPI)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ("1/model.onnx", "2/model.onnx", "labels.txt")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.network
@pytest.mark.timeout(600)
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "models" / "build_efficientnet.py"),
            "--out-dir",
            str(tmp_path / "efficientnet"),
        ],
        check=True,
        timeout=600,
        capture_output=True,
    )
    for name in BUILT:
        committed = ROOT / "models" / "efficientnet" / name
        assert sha256(tmp_path / "efficientnet" / name) == sha256(committed), name
