"""Run Triton's own example clients, unmodified, against `inferencehub up`.

    python scripts/triton_examples.py PATH/TO/client/src/python/examples

PATH is the `src/python/examples` folder of a checkout of github.com/triton-inference-server/
client (the clients are not in the tritonclient wheel). The repository served holds models
with the signatures those clients expect: `simple`, `simple_string` and `simple_identity`
(tests/model_builders.py) and the bundled `efficientnet`. Each client runs with its own default
arguments plus `-u` pointing at the hub; the image clients classify examples/cat.jpg. Exit 1 if
any client fails. Left out: simple_*_health_metadata (they require the server to call itself
"triton"), simple_*_model_control (they expect Triton's own 8-model example repository),
grpc_client.py (densenet_onnx), the sequence, streaming, ensemble and CUDA clients (not
served).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onnx import TensorProto  # noqa: E402

from tests.hub import running_hub  # noqa: E402
from tests.model_builders import triton_identity_model, triton_simple_model  # noqa: E402

CAT = str(ROOT / "examples" / "cat.jpg")
IMAGE = ["-m", "efficientnet", "-c", "3", "-s", "INCEPTION", CAT]
# (client, protocol, extra arguments)
CLIENTS: list[tuple[str, str, list[str]]] = [
    ("simple_http_infer_client.py", "http", []),
    ("simple_http_aio_infer_client.py", "http", []),
    ("simple_http_async_infer_client.py", "http", []),
    ("simple_http_string_infer_client.py", "http", []),
    ("simple_http_shm_client.py", "http", []),
    ("simple_http_shm_string_client.py", "http", []),
    ("simple_grpc_infer_client.py", "grpc", []),
    ("simple_grpc_aio_infer_client.py", "grpc", []),
    ("simple_grpc_async_infer_client.py", "grpc", []),
    ("simple_grpc_string_infer_client.py", "grpc", []),
    ("simple_grpc_shm_client.py", "grpc", []),
    ("simple_grpc_shm_string_client.py", "grpc", []),
    ("reuse_infer_objects_client.py", "http", []),
    ("reuse_infer_objects_client.py", "grpc", ["-i", "grpc"]),
    ("grpc_explicit_byte_content_client.py", "grpc", []),
    ("grpc_explicit_int_content_client.py", "grpc", []),
    ("grpc_explicit_int8_content_client.py", "grpc", []),
    ("simple_grpc_keepalive_client.py", "grpc", []),
    ("simple_grpc_custom_args_client.py", "grpc", []),
    ("image_client.py", "grpc", ["-i", "grpc", *IMAGE]),
    ("grpc_image_client.py", "grpc", IMAGE),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", type=Path, help="client/src/python/examples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ih-examples-") as work:
        models = Path(work) / "models"
        triton_simple_model(models / "simple" / "1" / "model.onnx")
        triton_simple_model(models / "simple_string" / "1" / "model.onnx", strings=True)
        triton_identity_model(models / "simple_identity" / "1" / "model.onnx")
        triton_simple_model(models / "simple_int8" / "1" / "model.onnx", element=TensorProto.INT8)
        shutil.copytree(ROOT / "models" / "efficientnet", models / "efficientnet")
        failed = []
        with running_hub(models, Path(work)) as hub:
            urls = {"http": hub.http_url.removeprefix("http://"), "grpc": hub.grpc_target}
            for client, protocol, extra in CLIENTS:
                command = [sys.executable, client, "-u", urls[protocol], *extra]
                done = subprocess.run(
                    command, cwd=args.examples, capture_output=True, text=True, timeout=120
                )
                last = (done.stdout.strip().splitlines() or [""])[-1]
                print(f"{'ok ' if done.returncode == 0 else 'FAIL'} {client} {protocol}: {last}")
                if done.returncode != 0:
                    failed.append(client)
                    print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        print(f"{len(CLIENTS) - len(failed)} of {len(CLIENTS)} example clients passed")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
