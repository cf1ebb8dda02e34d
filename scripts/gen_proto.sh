#!/usr/bin/env bash
# Regenerate the committed gRPC code from proto/ (run from anywhere).
# tests/unit/test_proto_fresh.py fails when the committed files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -Iproto \
  --python_out=. --grpc_python_out=. --pyi_out=. \
  proto/inferencehub/v1/inference.proto \
  proto/inferencehub/v1/hop.proto \
  proto/inferencehub/kserve/grpc_predict_v2.proto
