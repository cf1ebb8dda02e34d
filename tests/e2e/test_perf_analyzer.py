"""Triton's perf_analyzer drives the KServe v2 API over HTTP and gRPC without a single error.

perf_analyzer reads the model metadata and config, sends binary tensors (HTTP binary tensor
extension / gRPC raw_input_contents) and reads the server statistics, so it is a compact
compatibility test as well as a load test. scripts/install_perf_analyzer.sh installs it into
.tools/perf_analyzer (set PERF_ANALYZER_HOME for another place); when it is missing there, the
test runs that script first, which needs the package registries (hence the `network` mark).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.hub import Hub

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]
INPUT_DATA = REPO_ROOT / "bench" / "perf_analyzer_input.json"
RUN_TIMEOUT_S = 90


def perf_analyzer_home() -> Path:
    return Path(os.environ.get("PERF_ANALYZER_HOME", REPO_ROOT / ".tools" / "perf_analyzer"))


def perf_analyzer() -> tuple[Path, dict[str, str]]:
    """The binary and its environment; fails (never skips) when it is not installed."""
    home = perf_analyzer_home()
    binary = home / "bin" / "perf_analyzer"
    if not os.access(binary, os.X_OK):
        install = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "install_perf_analyzer.sh"), str(home)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        if install.returncode != 0 or not os.access(binary, os.X_OK):
            pytest.fail(
                f"perf_analyzer is not installed at {binary} and "
                f"scripts/install_perf_analyzer.sh failed:\n{install.stdout}\n{install.stderr}"
            )
    libs = str(home / "lib")
    old = os.environ.get("LD_LIBRARY_PATH")
    env = {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{old}" if old else libs}
    return binary, env


@pytest.mark.parametrize(
    ("protocol", "batch", "memory"),
    [
        ("http", 1, "none"),
        ("grpc", 1, "none"),
        ("http", 8, "none"),
        ("grpc", 8, "none"),
        # Inputs and outputs in system shared memory (the regions perf_analyzer registers).
        ("http", 8, "system"),
        ("grpc", 8, "system"),
    ],
)
def test_perf_analyzer_runs_clean(
    hub: Hub, tmp_path: Path, protocol: str, batch: int, memory: str
) -> None:
    binary, env = perf_analyzer()
    url = hub.http_url.split("://", 1)[1] if protocol == "http" else hub.grpc_target
    report = tmp_path / "report.csv"
    command = [
        str(binary),
        "-m",
        "scale",
        "-u",
        url,
        "-i",
        protocol,
        "-b",
        str(batch),
        "--concurrency-range",
        "2:2",
        "-p",
        "1000",
        "-r",
        "3",
        "--stability-percentage",
        "100",
        "--input-data",
        str(INPUT_DATA),
        "-f",
        str(report),
        "--shared-memory",
        memory,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"perf_analyzer did not finish in {RUN_TIMEOUT_S}s:\n{exc.stdout}{exc.stderr}")
    output = done.stdout + done.stderr
    explain = f"{' '.join(command)}\nrc={done.returncode}\n{output[-4000:]}"

    assert done.returncode == 0, explain
    errors = [line for line in output.splitlines() if re.search(r"error|failed", line, re.I)]
    assert not errors, f"perf_analyzer reported errors: {errors}\n{explain}"

    rows = list(csv.DictReader(report.read_text().splitlines())) if report.exists() else []
    assert rows, f"no CSV report\n{explain}"
    throughput = float(rows[0]["Inferences/Second"])
    assert throughput > 0, explain

    # The server section comes from the statistics extension: requests must show up there.
    successes = re.search(r"Successful request count: (\d+)", output)
    assert successes and int(successes.group(1)) > 0, f"no server statistics\n{explain}"
    inferences = re.search(r"Inference count: (\d+)\n\s*Execution count: (\d+)", output)
    assert inferences, f"no server inference/execution counts\n{explain}"
    # Each request carries `batch` rows; the server counts rows as inferences.
    assert int(inferences.group(1)) == batch * int(successes.group(1)), explain
