"""`inferencehub up` starts, reports failures in one line, stops cleanly, leaves nothing behind."""

from __future__ import annotations

import contextlib
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.hub import Hub, alive, free_tcp_port, running_hub, up_command, wait_for

pytestmark = pytest.mark.e2e


def requests_in_worker(hub: Hub) -> int:
    """Requests the worker has received and not answered yet (its own count, read through
    the gateway's /v1/status)."""
    with contextlib.suppress(httpx.HTTPError):
        status = httpx.get(f"{hub.http_url}/v1/status", timeout=5).json()
        return sum(w["hop"]["worker_requests_held"] for w in status["workers"])
    return 0


def wait_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_everything_and_removes_runtime_dir(
    repository: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    with running_hub(repository, tmp_path) as hub:
        children = hub.children()
        assert set(children) == {"worker", "gateway"}
        runtime = hub.runtime_dir()
        assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
        sock = runtime / "worker.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE((runtime / "settings.json").stat().st_mode) == 0o600
        assert "InferenceHub ready: http://127.0.0.1:" in hub.output()
        # The supervisor stays lean: neither ONNX Runtime nor gRPC's core is loaded in it.
        maps = Path(f"/proc/{hub.process.pid}/maps").read_text()
        assert "onnxruntime" not in maps
        assert "cygrpc" not in maps
        assert "onnxruntime" in Path(f"/proc/{children['worker']}/maps").read_text()
        code = hub.stop(sig)
        assert code == 0, hub.output()
        assert wait_gone(list(children.values())) == []
        assert not runtime.exists()
        out = hub.output()
        assert out.index("gateway stopped") < out.index("worker stopping")
        assert "Traceback" not in out


def test_in_flight_request_finishes_during_graceful_stop(repository: Path, tmp_path: Path) -> None:
    with running_hub(repository, tmp_path) as hub:
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [1], "data": [0.5]},
                {"name": "iterations", "datatype": "INT64", "shape": [], "data": 1_500_000},
            ]
        }
        result: dict[str, httpx.Response] = {}

        def call() -> None:
            result["reply"] = httpx.post(
                f"{hub.http_url}/v1/models/slow/predict", json=body, timeout=60
            )

        caller = threading.Thread(target=call)
        caller.start()
        wait_for(lambda: requests_in_worker(hub) == 1, 20, "the request to reach the worker")
        code = hub.stop(signal.SIGTERM)
        caller.join(timeout=30)
        assert code == 0, hub.output()
        reply = result["reply"]
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == [1_500_000.5]


def test_supervisor_killed_children_follow_via_lifeline(repository: Path, tmp_path: Path) -> None:
    with running_hub(repository, tmp_path) as hub:
        children = list(hub.children().values())
        hub.process.kill()  # SIGKILL: no signal handler runs, nothing is cleaned up by it
        hub.process.wait()
        assert wait_gone(children) == [], "worker/gateway outlived their supervisor"


def run_up(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def test_busy_http_port_fails_fast_with_one_line(repository: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_up(*up_command(repository, port, free_tcp_port()))
    assert result.returncode == 1
    assert (
        f"gateway failed to start: HTTP port {port} on 127.0.0.1 is already in use" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_busy_grpc_port_fails_fast_with_one_line(repository: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_up(*up_command(repository, free_tcp_port(), port))
    assert result.returncode == 1
    assert f"gRPC port {port} on 127.0.0.1 is already in use" in result.stderr


def test_missing_model_dir_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_up(*up_command(tmp_path / "nope", free_tcp_port(), free_tcp_port()))
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_sets_ports_and_flags_win(repository: Path, tmp_path: Path) -> None:
    file_port, flag_port = free_tcp_port(), free_tcp_port()
    config = tmp_path / "inferencehub.toml"
    config.write_text(
        f"[gateway]\nhttp_port = {file_port}\ngrpc_port = {flag_port}\n"
        f'[worker]\nmodels_dir = "{repository}"\n'
    )
    grpc_port = free_tcp_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inferencehub",
            "up",
            "--config",
            str(config),
            "--grpc-port",
            str(grpc_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{file_port}" in line
    assert f"grpc 127.0.0.1:{grpc_port}" in line


def test_same_port_for_http_and_grpc_is_a_one_line_error(repository: Path) -> None:
    port = free_tcp_port()
    result = run_up(*up_command(repository, port, port))
    assert result.returncode == 1
    assert f"gRPC port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_shared_runtime_dir_is_refused(repository: Path, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[supervisor]\nruntime_dir = "/tmp"\n')
    result = run_up(
        *up_command(repository, free_tcp_port(), free_tcp_port()), "--config", str(config)
    )
    assert result.returncode == 2
    assert "runtime dir /tmp must be private (mode 0700), not 1777" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_ctrl_c_forces_a_fast_exit(repository: Path, tmp_path: Path) -> None:
    with running_hub(repository, tmp_path) as hub:
        children = list(hub.children().values())
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [1], "data": [0.0]},
                {"name": "iterations", "datatype": "INT64", "shape": [], "data": 20_000_000},
            ]
        }  # ~20 s of compute: the drain would wait

        def call() -> None:
            with contextlib.suppress(httpx.HTTPError):  # a forced exit drops the connection
                httpx.post(f"{hub.http_url}/v1/models/slow/predict", json=body, timeout=60)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        wait_for(lambda: requests_in_worker(hub) == 1, 20, "the request to reach the worker")
        started = time.monotonic()
        hub.process.send_signal(signal.SIGINT)
        # The second Ctrl+C counts only once the first one started the graceful stop.
        wait_for(lambda: "supervisor stopping" in hub.output(), 10, "the first Ctrl+C handled")
        hub.process.send_signal(signal.SIGINT)
        assert hub.process.wait(timeout=10) == 130
        assert time.monotonic() - started < 8
        assert wait_gone(children) == []
