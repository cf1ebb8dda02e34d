#!/usr/bin/env bash
# CUDA end to end on a GPU machine with onnxruntime-gpu installed; see bench/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
