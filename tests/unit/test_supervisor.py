"""The supervisor in-process with fake children: start order and the ready line, restarts of a
crashed child, giving up on a crash loop, and the stop order. The children's own process
handling (pipes, the lifeline, signals) is ChildProcess's, tested with real processes in
tests/e2e/test_lifecycle.py and test_resilience.py."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from inferencehub.config import Settings
from inferencehub.supervisor.supervisor import EXIT_CHILD_FAILED, EXIT_OK, Supervisor

PIDS = itertools.count(1000)


class FakeChild:
    """Ready at once; exits when crash() or stop() says so."""

    def __init__(self, events: list[tuple[str, str]], role: str, argv: list[str]) -> None:
        self.role, self.argv, self._events = role, argv, events
        self.pid: int | None = None
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    async def start(self) -> None:
        self.pid = next(PIDS)
        self._events.append(("start", self.role))

    async def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        return {"http_port": 8123, "grpc_port": 8124} if self.role == "gateway" else {}

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def crash(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    async def stop(self, grace_s: float) -> int | None:
        if self.returncode is None:
            self._events.append(("stop", self.role))
            self.crash(0)
        return self.returncode

    def kill(self) -> None:
        self.crash(-9)

    def stderr_tail(self) -> list[str]:
        return [f"{self.role}: the last words"]


class Children:
    """The factory the supervisor is given; remembers every child it made, by role."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.made: dict[str, list[FakeChild]] = {}

    def __call__(self, role: str, argv: list[str], log_format: str = "text") -> FakeChild:
        child = FakeChild(self.events, role, argv)
        self.made.setdefault(role, []).append(child)
        return child

    def current(self, role: str) -> FakeChild:
        return self.made[role][-1]


def settings(tmp_path: Path) -> Settings:
    (tmp_path / "models").mkdir(exist_ok=True)
    return Settings.model_validate(
        {
            "worker": {"models_dir": str(tmp_path / "models")},
            "supervisor": {"runtime_dir": str(tmp_path / "run")},
        }
    )


async def until(condition: Any, what: str) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


async def started(tmp_path: Path) -> tuple[Children, Supervisor, asyncio.Task[int]]:
    """A supervisor running with fake children, both started."""
    children = Children()
    supervisor = Supervisor(settings(tmp_path), children)
    running = asyncio.create_task(supervisor.run())
    await until(lambda: "gateway" in children.made, "the gateway started")
    return children, supervisor, running


async def test_the_worker_starts_before_the_gateway_and_they_stop_in_reverse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children, supervisor, running = await started(tmp_path)
    assert children.events == [("start", "worker"), ("start", "gateway")]
    assert "--worker" in children.current("gateway").argv  # the gateway knows its worker
    supervisor.stop()
    assert await running == EXIT_OK
    assert children.events[-2:] == [("stop", "gateway"), ("stop", "worker")]
    assert (
        "InferenceHub ready: http://127.0.0.1:8123  grpc 127.0.0.1:8124" in capsys.readouterr().out
    )


async def test_a_crashed_child_is_restarted_and_the_state_file_says_so(tmp_path: Path) -> None:
    children, supervisor, running = await started(tmp_path)
    children.current("worker").crash(-9)
    await until(lambda: len(children.made["worker"]) == 2, "the worker restarted")
    state = json.loads(next((tmp_path / "run").rglob("state.json")).read_text())
    worker = next(p for p in state["processes"] if p["role"] == "worker")
    assert worker["restarts"] == 1 and worker["last_exit_reason"] == "was killed by SIGKILL"
    assert len(children.made["gateway"]) == 1  # the other child was left alone
    supervisor.stop()
    assert await running == EXIT_OK


async def test_a_crash_loop_makes_it_give_up_and_stop_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children, _, running = await started(tmp_path)
    for crashes in range(1, 6):  # the policy gives up at the 5th crash within a minute
        children.current("gateway").crash(3)
        if crashes < 5:
            await until(lambda n=crashes: len(children.made["gateway"]) == n + 1, "a restart")
    assert await running == EXIT_CHILD_FAILED
    err = capsys.readouterr().err
    assert "gateway exited with code 3 and keeps crashing; giving up" in err
    assert "gateway: the last words" in err  # its last stderr lines, for the person
    assert children.events[-1] == ("stop", "worker")
