"""One supervised child process: start it, learn when it is ready, stream its logs, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)


class ChildStartError(Exception):
    """A child exited or reported an error before it became ready."""

    def __init__(self, role: str, reason: str) -> None:
        super().__init__(f"{role} failed to start: {reason}")
        self.reason = reason


# The start of a line from logging.TextFormatter: `12:00:01 INFO    `.
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ ")


class ChildProcess:
    """A role re-executed from this program, in its own process group, with a lifeline stdin."""

    def __init__(
        self, role: str, argv: Sequence[str], *, log_format: str = "text", tail_lines: int = 200
    ) -> None:
        self.role = role
        self._log_format = log_format
        self._argv = list(argv)
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._notify_reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def stderr_tail(self) -> list[str]:
        return list(self._tail)

    async def start(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                "--notify-fd",
                str(write_fd),
                pass_fds=(write_fd,),
                stdin=asyncio.subprocess.PIPE,  # lifeline: EOF tells the child we are gone
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                process_group=0,  # a terminal Ctrl+C reaches only the supervisor
                limit=1 << 20,  # NOTE: the 64 KiB default line limit is too small for tracebacks
            )
        finally:
            os.close(write_fd)
        self._pump = asyncio.create_task(self._pump_stderr(), name=f"{self.role}-stderr")
        self._notify_reader = asyncio.create_task(
            self._read_notifications(read_fd), name=f"{self.role}-notify"
        )

    def _attributed(self, line: str) -> str:
        """A line the child wrote without its logging (a traceback's lines, a native library's
        warning) gets the child's role, so every line in the supervisor's output says whose."""
        if self._log_format == "json":
            if line.startswith("{"):
                return line
            return json.dumps(
                {"ts": round(time.time(), 3), "level": "INFO", "role": self.role,
                 "logger": "stderr", "msg": line}
            )  # fmt: skip
        return line if _LOG_LINE.match(line) else f"{self.role:<10} | {line}"

    async def _pump_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self._tail.append(line)
            sys.stderr.write(self._attributed(line) + "\n")
            sys.stderr.flush()

    async def _read_notifications(self, fd: int) -> None:
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
            try:
                async for line in reader:
                    with contextlib.suppress(ValueError):
                        self._events.put_nowait(json.loads(line))
            finally:
                transport.close()
        self._events.put_nowait({"event": "closed"})

    async def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """The child's ready notice (ports, address), raced against its death and a deadline.

        Raises:
            ChildStartError: it reported an error, exited, or took longer than `timeout_s`.
        """
        try:
            async with asyncio.timeout(timeout_s):
                event = await self._events.get()
        except TimeoutError:
            raise ChildStartError(self.role, f"not ready after {timeout_s:.0f}s") from None
        if event.get("event") == "ready":
            return event
        if event.get("event") == "error":
            raise ChildStartError(self.role, str(event.get("message")))
        code = await self.wait()
        last = next((line for line in reversed(self._tail) if line.strip()), "")
        raise ChildStartError(self.role, f"exited with code {code}" + (f": {last}" if last else ""))

    async def wait(self) -> int:
        assert self._proc is not None
        code = await self._proc.wait()
        if self._pump is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # let the last log lines through
                    await self._pump
        return code

    async def stop(self, grace_s: float) -> int | None:
        """SIGTERM, wait up to `grace_s`, then SIGKILL; returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
            try:
                async with asyncio.timeout(grace_s):
                    await self._proc.wait()
            except TimeoutError:
                logger.warning("%s did not stop within %.0fs; killing it", self.role, grace_s)
                self.kill()
        code = await self.wait()
        await self._cleanup()
        return code

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    async def _cleanup(self) -> None:
        for task in (self._pump, self._notify_reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()
