"""`inferencehub status` against a real hub: the live view driven in tmux the way a person
would (load, a killed worker, a stopped server, `q`), and the --json / --once snapshots."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.hub import Hub, free_tcp_port, running_hub
from tests.model_builders import scale_model

pytestmark = pytest.mark.e2e

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    scale_model(root / "scale" / "1" / "model.onnx", [1, 2, 3, 4])
    return root


@contextmanager
def load(hub: Hub) -> Iterator[list[int]]:
    """~30 requests a second from a thread (gentle: this machine has two cores)."""
    stop, answered = threading.Event(), [0]

    def send() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    reply = client.post(f"{hub.http_url}/v1/models/scale/predict", json=BODY)
                    answered[0] += reply.status_code == 200
                except httpx.HTTPError:
                    pass  # the worker restarts, the hub stops: the view must show it, not us
                stop.wait(0.03)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield answered
    finally:
        stop.set()
        thread.join(timeout=15)


class Tmux:
    """A private tmux server (its own socket): never touches the user's sessions."""

    def __init__(self) -> None:
        self.socket = f"ihub-status-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "status"

    def __call__(self, *args: str) -> str:
        command = ["tmux", "-L", self.socket, "-f", os.devnull, *args]
        return subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=10
        ).stdout

    def start(self, shell_command: str) -> None:
        self("new-session", "-d", "-s", self.session, "-x", "80", "-y", "24", shell_command)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def wait_for(self, seen: Callable[[str], bool], what: str, timeout_s: float = 15) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            screen = self.screen()
            if seen(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"no {what} on screen after {timeout_s}s:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def read_when_written(path: Path, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text().endswith("\n"):
        assert time.monotonic() < deadline, f"{path.name} never written"
        time.sleep(0.1)
    return path.read_text()


def process_row(screen: str, role: str) -> list[str]:
    """role, pid, state, uptime, restarts, ... of the processes table."""
    return next((line.split() for line in screen.splitlines() if line.startswith(f"{role} ")), [])


def requests_per_s(screen: str) -> float:
    match = re.search(r"^scale\s+1\s+(\d+\.\d)\s", screen, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_live_view_follows_load_a_worker_restart_and_a_lost_server(tmp_path: Path) -> None:
    tmux = Tmux()
    try:
        with running_hub(models(tmp_path), tmp_path) as hub, load(hub) as answered:
            # tmux 3.3 does not always reap a pane's process (pane_dead_status stays empty),
            # so a shell around the view records its exit status and the terminal settings.
            view = shlex.join(
                [sys.executable, "-m", "inferencehub", "status", "--url", hub.http_url]
            )
            tty_before, tty_after, status = (tmp_path / n for n in ("before", "after", "status"))
            before, after, code, stderr = (
                shlex.quote(str(path)) for path in (tty_before, tty_after, status, tmp_path / "err")
            )
            tmux.start(
                f"stty -g > {before}; {view} 2> {stderr}; echo $? > {code}; stty -g > {after}; "
                "sleep 60"
            )
            pids = {"supervisor": hub.process.pid, **hub.children()}
            screen = tmux.wait_for(
                lambda s: requests_per_s(s) > 0
                and re.search(r"[▂▃▄▅▆▇█]", s) is not None  # the sparkline rose
                and all(process_row(s, r)[1:3] == [str(pid), "running"] for r, pid in pids.items()),
                "traffic and three running processes",
            )  # fmt: skip
            assert answered[0] > 0
            lines = screen.splitlines()
            assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
            assert any(line.split()[:5] == ["scale", "1", "*", "READY", "CPU"] for line in lines)
            assert "auth off" in screen and "0 active keys" in screen

            os.kill(pids["worker"], signal.SIGKILL)
            tmux.wait_for(
                lambda s: (row := process_row(s, "worker"))[2:3] == ["running"]
                and row[1] != str(pids["worker"]) and row[4] == "1",
                "the restarted worker with 1 restart",
            )  # fmt: skip
            tmux.wait_for(lambda s: requests_per_s(s) > 0, "traffic after the restart")

            assert hub.stop() == 0
            tmux.wait_for(
                lambda s: f"cannot reach {hub.http_url}: connection refused — retrying" in s,
                "the lost server",
            )
            assert not status.exists()  # still running, still retrying
        tmux("send-keys", "-t", tmux.session, "q")
        assert read_when_written(status) == "0\n", (tmp_path / "err").read_text()
        assert read_when_written(tty_after) == read_when_written(tty_before)  # cbreak undone
        assert "processes" not in tmux.screen()  # back from the alternate screen
    finally:
        tmux.kill()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferencehub", *args], capture_output=True, text=True, timeout=30
    )


def test_json_and_once_print_one_snapshot(tmp_path: Path) -> None:
    with running_hub(models(tmp_path), tmp_path) as hub:
        with httpx.Client(timeout=10) as client:
            for _ in range(3):
                reply = client.post(f"{hub.http_url}/v1/models/scale/predict", json=BODY)
                assert reply.status_code == 200
        shown = run_cli("status", "--json", "--url", hub.http_url)
        assert shown.returncode == 0, shown.stderr
        snapshot = json.loads(shown.stdout)
        assert snapshot["url"] == hub.http_url and snapshot["worker_serving"] is True
        pids = {p["role"]: p["pid"] for p in snapshot["processes"]}
        assert pids == {"supervisor": hub.process.pid, **hub.children()}
        assert [m["name"] for m in snapshot["models"]] == ["scale"]
        assert [(t["name"], t["requests"]) for t in snapshot["traffic"]] == [("scale", 3)]
        assert snapshot["door"]["auth"] is False

        once = run_cli("status", "--once", "--url", hub.http_url)
        assert once.returncode == 0, once.stderr
        assert "\x1b[?1049h" not in once.stdout  # no screen switch
        lines = once.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80
        assert process_row(once.stdout, "worker")[1:3] == [str(pids["worker"]), "running"]
        assert any(line.split()[:2] == ["scale", "1"] for line in lines)
        assert "q quit" not in once.stdout

    nobody = f"http://127.0.0.1:{free_tcp_port()}"
    refused = run_cli("status", "--once", "--url", nobody)
    assert refused.returncode == 1 and "cannot reach" in refused.stderr
    wrong = run_cli("status", "--url", "grpc://127.0.0.1:1")
    assert wrong.returncode == 2 and "HTTP URL" in wrong.stderr
