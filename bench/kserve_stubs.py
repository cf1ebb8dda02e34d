"""KServe v2 gRPC stubs for the bench's own processes, generated from the project's proto.

The naive server and the built-in load generator must not import `inferencehub.kserve`: the
naive server stands alone, and the generator must not measure InferenceHub with its own code.
They compile the same wire-compatible proto into a scratch directory instead.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).resolve().parents[1] / "proto" / "inferencehub" / "kserve"
PROTO_FILE = "grpc_predict_v2.proto"
MODULE = "grpc_predict_v2_pb2"


def generate(target: Path) -> Path:
    """Compile grpc_predict_v2.proto into `target` (a no-op when already there)."""
    if (target / f"{MODULE}_grpc.py").exists():
        return target
    from grpc_tools import protoc  # bench-only dependency (grpcio-tools, the test extra)

    target.mkdir(parents=True, exist_ok=True)
    status = protoc.main(
        [
            "protoc",
            f"-I{PROTO}",
            f"--python_out={target}",
            f"--grpc_python_out={target}",
            str(PROTO / PROTO_FILE),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed ({status}) on {PROTO / PROTO_FILE}")
    return target


def load(directory: Path | None = None) -> tuple[ModuleType, ModuleType]:
    """(messages, services) modules, generated into `directory` or a fresh temp dir."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="kserve-stubs-"))
    generate(directory)
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    return importlib.import_module(MODULE), importlib.import_module(f"{MODULE}_grpc")
