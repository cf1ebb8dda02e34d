"""Start the real `inferencehub up` as a subprocess on free ports, and stop it."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0


_HUBS = itertools.count()


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                children.append(int(entry.name))
    return children


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@dataclass
class Hub:
    process: subprocess.Popen[str]
    http_url: str
    grpc_target: str
    log: Path

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.grpc_target}"

    def children(self) -> dict[str, int]:
        """role -> pid of the supervisor's children."""
        roles = {}
        for pid in child_pids(self.process.pid):
            argv = cmdline(pid)
            role = next((a for a in argv if a in ("worker", "gateway")), None)
            if role:
                roles[role] = pid
        return roles

    def runtime_dir(self) -> Path:
        argv = cmdline(self.children()["worker"])
        return Path(argv[argv.index("--settings") + 1]).parent

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)


def up_command(models: Path, http_port: int, grpc_port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "inferencehub",
        "up",
        "--models",
        str(models),
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        *extra,
    ]


READY_LINE = re.compile(r"InferenceHub ready: \S+?:(\d+)\s+\S+ \S+?:(\d+)\s")


def wait_ready(
    hub: Hub, timeout_s: float = START_TIMEOUT_S, verify: ssl.SSLContext | bool = True
) -> None:
    """Probe /v2/health/ready until it says yes and the supervisor has printed its ready line
    (which comes a moment after the gateway answers), failing fast if `up` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise RuntimeError(
                f"inferencehub up exited with {hub.process.returncode}:\n{hub.output()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            ready = httpx.get(f"{hub.http_url}/v2/health/ready", timeout=1.0, verify=verify)
            if ready.status_code == 200 and "InferenceHub ready" in hub.output():
                return
        time.sleep(0.1)
    raise TimeoutError(f"inferencehub up not ready after {timeout_s}s:\n{hub.output()}")


def bound_ports(process: subprocess.Popen[str], log: Path, timeout_s: float) -> tuple[int, int]:
    """The HTTP and gRPC ports from `up`'s ready line (it was started with port 0: the
    gateway bound free ones, no guessing and no race with other tests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = READY_LINE.search(log.read_text())
        if found:
            return int(found.group(1)), int(found.group(2))
        if process.poll() is not None:
            raise RuntimeError(
                f"inferencehub up exited with {process.returncode}:\n{log.read_text()}"
            )
        time.sleep(0.05)
    raise TimeoutError(f"inferencehub up printed no ready line in {timeout_s}s:\n{log.read_text()}")


@contextlib.contextmanager
def running_hub(
    models: Path,
    log_dir: Path,
    *extra: str,
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
) -> Iterator[Hub]:
    """`inferencehub up` serving `models` on ports it picks; always stopped (and killed if it
    must be)."""
    log = log_dir / f"hub-{next(_HUBS)}-{os.getpid()}.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            up_command(models, 0, 0, *extra),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # Keys come from the test's own data dir, never from the user's.
            env={**os.environ, "PYTHONUNBUFFERED": "1", "XDG_DATA_HOME": str(log_dir / "xdg")},
        )
    try:
        http_port, grpc_port = bound_ports(process, log, START_TIMEOUT_S)
        hub = Hub(process, f"{scheme}://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log)
        wait_ready(hub, verify=verify)
        yield hub
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0, what: str = "it") -> None:
    """Poll `condition` until it holds; fail the test naming `what` when it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
