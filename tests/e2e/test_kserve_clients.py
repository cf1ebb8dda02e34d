"""The real Triton clients (tritonclient.http / tritonclient.grpc) against the KServe v2 API.

tritonclient's protobuf messages clash with ours in one process, so the checks run in a
subprocess (tests/e2e/tritonclient_checks.py) once per module; each check is one test here.
The list below is fixed: a check the script stops running fails, and a check the script runs
but this list lacks fails too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kserve_models import DATATYPES, add_late_model, build_kserve_repository
from tests.hub import Hub, running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHECKS_SCRIPT = Path(__file__).with_name("tritonclient_checks.py")
RUN_TIMEOUT_S = 180

_HTTP_MODES = ["binary", "json", "json_in_binary_out", "binary_in_json_out"]
_ERRORS_BOTH = [
    "unknown_model",
    "unknown_model_metadata",
    "unknown_model_config",
    "unknown_version",
    "unknown_version_metadata",
    "statistics_unknown_model",
    "failed_model",
    "wrong_shape",
    "wrong_shape_json",
    "wrong_rank",
    "wrong_dtype",
    "wrong_dtype_json",
    "batch_too_large",
    "unknown_input",
    "missing_input",
    "unknown_output",
    "byte_size_vs_shape",
    "bytes_malformed",
    "load_unknown_model",
    "unload_unknown_model",
]

CHECK_NAMES = [
    # server
    "http_server_live",
    "http_server_ready",
    "http_server_metadata",
    "grpc_server_live",
    "grpc_server_ready",
    "grpc_server_metadata",
    "grpc_health_serving",
    "grpc_reflection_lists_service",
    # model metadata, config, readiness
    "http_model_metadata",
    "http_model_metadata_version",
    "http_model_metadata_all_types",
    "grpc_model_metadata",
    "grpc_model_metadata_version",
    "grpc_model_metadata_all_types",
    *[
        f"{p}_model_config_{case}"
        for case in ("batching", "fixed_shape", "all_types")
        for p in ("http", "grpc")
    ],
    "http_model_ready",
    "grpc_model_ready",
    # every datatype, bit-exact through identity models
    *[f"http_infer_{dt}_{mode}" for dt in DATATYPES for mode in _HTTP_MODES],
    *[f"grpc_infer_{dt}" for dt in DATATYPES],
    *[f"grpc_infer_{dt}_typed_contents" for dt in DATATYPES if dt != "FP16"],
    "http_infer_all_types_binary",
    "http_infer_all_types_json",
    "http_infer_mixed_binary_and_json",
    "grpc_infer_all_types",
    "http_infer_BYTES_non_utf8",
    "grpc_infer_BYTES_non_utf8",
    "http_infer_default_outputs",
    "grpc_infer_default_outputs",
    "http_infer_requested_outputs_subset",
    "grpc_infer_requested_outputs_subset",
    # versions, consistency, request ids, concurrency
    "http_model_version_selection",
    "grpc_model_version_selection",
    "json_binary_grpc_outputs_equal",
    "http_scale_matches_numpy",
    "http_request_id_echo",
    "grpc_request_id_echo",
    "http_async_infer_concurrent",
    "grpc_async_infer_concurrent",
    # statistics
    "http_statistics",
    "grpc_statistics",
    "http_statistics_all_models",
    "grpc_statistics_all_models",
    # errors
    *[f"{p}_error_{case}" for case in _ERRORS_BOTH for p in ("http", "grpc")],
    "http_error_binary_data_size_exceeds_body",
    "http_error_binary_data_trailing_bytes",
    "http_error_json_element_count",
    "http_error_json_element_type",
    "http_error_unsupported_datatype",
    "grpc_error_raw_contents_count",
    "grpc_error_typed_contents_count",
    "grpc_error_typed_contents_wrong_field",
    "grpc_error_raw_and_typed_contents",
    "grpc_error_raw_size_short",
    # repository
    "http_repository_index",
    "grpc_repository_index",
    "http_repository_unload_load",
    "grpc_repository_unload_load",
    "http_repository_load_new_model",
    # shared memory and classification (tests/e2e/test_shared_memory.py covers the rest)
    "grpc_system_shared_memory",
    "grpc_classification",
]


@dataclass
class ChecksRun:
    results: dict[str, dict[str, Any]]
    returncode: int | None
    output: str
    hub_log: Path

    def explain(self) -> str:
        return f"checks script rc={self.returncode}; hub log {self.hub_log}\n{self.output[-3000:]}"


@pytest.fixture(scope="module")
def kserve_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path]]:
    repository = build_kserve_repository(tmp_path_factory.mktemp("kserve-models"))
    with running_hub(repository, tmp_path_factory.mktemp("kserve-logs")) as hub:
        yield hub, repository


@pytest.fixture(scope="module")
def checks(kserve_hub: tuple[Hub, Path], tmp_path_factory: pytest.TempPathFactory) -> ChecksRun:
    hub, repository = kserve_hub
    add_late_model(repository)  # only an explicit repository load may serve it
    out = tmp_path_factory.mktemp("tritonclient") / "results.json"
    command = [
        sys.executable,
        str(CHECKS_SCRIPT),
        "--http",
        hub.http_url,
        "--grpc",
        hub.grpc_target,
        "--out",
        str(out),
        "--budget",
        str(RUN_TIMEOUT_S - 30),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
        )
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = None
        output = f"timed out after {RUN_TIMEOUT_S}s\n{exc.stdout or ''}{exc.stderr or ''}"
    results = json.loads(out.read_text()) if out.exists() else {}
    return ChecksRun(results, returncode, output, hub.log)


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_tritonclient_check(checks: ChecksRun, name: str) -> None:
    result = checks.results.get(name)
    if result is None:
        pytest.fail(f"check {name!r} did not run\n{checks.explain()}")
    assert result["ok"], f"{name}: {result['detail']}"


def test_every_check_is_listed(checks: ChecksRun) -> None:
    assert checks.returncode == 0, checks.explain()
    unlisted = sorted(set(checks.results) - set(CHECK_NAMES))
    assert not unlisted, f"add these to CHECK_NAMES: {unlisted}"
