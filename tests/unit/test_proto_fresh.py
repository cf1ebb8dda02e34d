"""The committed generated code matches proto/ (run scripts/gen_proto.sh after editing a .proto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("inference_pb2.py", "inference_pb2.pyi", "inference_pb2_grpc.py")


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(ROOT / "proto" / "inferencehub" / "v1" / "inference.proto"),
        ],
        check=True,
        timeout=60,
    )
    for name in GENERATED:
        fresh = (tmp_path / "inferencehub" / "v1" / name).read_text()
        committed = (ROOT / "inferencehub" / "v1" / name).read_text()
        assert committed == fresh, f"inferencehub/v1/{name} is stale: run scripts/gen_proto.sh"
