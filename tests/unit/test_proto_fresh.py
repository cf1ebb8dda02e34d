"""The committed generated code matches proto/ (run scripts/gen_proto.sh after editing a .proto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = (
    "inferencehub/v1/inference.proto",
    "inferencehub/v1/hop.proto",
    "inferencehub/kserve/grpc_predict_v2.proto",
)


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
            *(str(ROOT / "proto" / p) for p in PROTOS),
        ],
        check=True,
        timeout=60,
    )
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*"))
    assert len(fresh) == 3 * len(PROTOS)
    for path in fresh:
        committed = ROOT / path
        assert committed.exists(), f"{path} is missing: run scripts/gen_proto.sh"
        assert committed.read_text() == (tmp_path / path).read_text(), (
            f"{path} is stale: run scripts/gen_proto.sh"
        )
