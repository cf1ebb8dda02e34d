"""`inferencehub up`: the runtime dir, the worker then the gateway, restarts, an ordered stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from inferencehub.config import Settings
from inferencehub.runtime import (
    HANDLED_SIGNALS,
    RuntimeDir,
    self_command,
    write_private_atomically,
)
from inferencehub.state import STATE_FILE, HubState, write_state_atomic
from inferencehub.supervisor.child import ChildProcess, ChildStartError
from inferencehub.supervisor.policy import RestartPolicy

logger = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_CHILD_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130


class Supervisor:
    """Owns the children's lifecycle; its own work is waiting."""

    def __init__(
        self, settings: Settings, child_factory: Callable[..., ChildProcess] = ChildProcess
    ) -> None:
        """`child_factory(role, argv, log_format=...)` makes a child (tests pass fakes that
        start, get ready, crash and stop on cue)."""
        self._settings = settings
        self._child_factory = child_factory
        self._stop = asyncio.Event()
        self._force = False
        # Children by name ("worker" or "worker-0", "worker-1", ...; "gateway"), in start order;
        # they stop in reverse.
        self._children: dict[str, ChildProcess] = {}
        self._argv: dict[str, list[str]] = {}
        self._policies: dict[str, RestartPolicy] = {}
        self._state = HubState(supervisor_pid=os.getpid(), started_at=time.time())
        self._state_path: Path | None = None

    def stop(self) -> None:
        """As SIGTERM: stop the children in reverse order, then return from run()."""
        self._on_signal(signal.SIGTERM)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set() and sig is signal.SIGINT:
            self._force = True  # second Ctrl+C: skip the grace period
            for child in self._children.values():
                child.kill()
        self._stop.set()

    async def run(self) -> int:
        """Start everything, serve until a signal (restarting crashed children), stop in order."""
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        with RuntimeDir.create(self._settings.supervisor.runtime_dir) as runtime:
            self._settings.to_child_file(runtime.settings_file)
            self._state_path = runtime.path / STATE_FILE
            self._argv = self._commands(runtime)
            self._policies = {name: RestartPolicy() for name in self._argv}
            try:
                ready = {}
                for name in self._argv:
                    notice = await self._start(name)
                    if notice is None:
                        return await self._shutdown(EXIT_INTERRUPTED)
                    ready[name] = notice
            except ChildStartError as exc:
                self._say(f"inferencehub: {exc}", error=True)
                return await self._shutdown(EXIT_CHILD_FAILED)
            self._pin_ports(runtime, ready["gateway"])
            host = self._settings.gateway.host
            shown = f"[{host}]" if ":" in host else host
            tls = self._settings.gateway.tls_cert is not None
            self._say(
                f"InferenceHub ready: {'https' if tls else 'http'}://{shown}:"
                f"{ready['gateway']['http_port']}  "
                f"{'grpc+tls' if tls else 'grpc'} {shown}:{ready['gateway']['grpc_port']}  "
                f"models {self._settings.worker.models_dir}"
            )
            return await self._watch()

    def _pin_ports(self, runtime: RuntimeDir, notice: dict[str, object]) -> None:
        """Ports asked for as 0 (any free one) are what the gateway bound from now on: a
        restarted gateway comes back where its clients know it."""
        gateway = self._settings.gateway
        if gateway.http_port and gateway.grpc_port:
            return
        bound = {"http_port": notice["http_port"], "grpc_port": notice["grpc_port"]}
        self._settings = self._settings.model_copy(
            update={"gateway": gateway.model_copy(update=bound)}
        )
        write_private_atomically(runtime.settings_file, self._settings.model_dump_json())

    def _commands(self, runtime: RuntimeDir) -> dict[str, list[str]]:
        """Each child's command line: the local workers (one socket and settings file each,
        with their placement), then the gateway, which knows them all."""
        placements = self._settings.worker_placements()
        names = (
            ["worker"] if len(placements) == 1 else [f"worker-{i}" for i in range(len(placements))]
        )
        commands: dict[str, list[str]] = {}
        addresses = []
        for name, placement in zip(names, placements, strict=True):
            single = name == "worker"
            settings_file = (
                runtime.settings_file if single else runtime.path / f"settings-{name}.json"
            )
            address = runtime.worker_address if single else runtime.socket_address(f"{name}.sock")
            self._settings.for_worker(placement, len(placements)).to_child_file(settings_file)
            only = [arg for model in placement.models or () for arg in ("--only", model)]
            commands[name] = self_command(
                "worker", "--settings", str(settings_file), "--lifeline", "--socket", address,
                "--name", name, *only,
            )  # fmt: skip
            addresses.append(address)
        commands["gateway"] = self_command(
            "gateway", "--settings", str(runtime.settings_file), "--lifeline",
            *(arg for address in addresses for arg in ("--worker", address)),
            "--state", str(self._state_path),
        )  # fmt: skip
        return commands

    def _say(self, message: str, error: bool = False) -> None:
        """A line for the person who ran `up` (the ready line, why it gave up); a JSON object
        with --log-format json, so log shippers read every line of the output."""
        if self._settings.log_format == "json":
            message = json.dumps(
                {"ts": round(time.time(), 3), "level": "ERROR" if error else "INFO",
                 "role": "supervisor", "logger": "inferencehub.supervisor", "msg": message}
            )  # fmt: skip
        print(message, file=sys.stderr if error else sys.stdout, flush=True)

    async def _start(self, role: str) -> dict[str, object] | None:
        """Start a child and wait until it is ready; None if a stop signal came first.

        Raises:
            ChildStartError: it reported an error, exited or timed out while starting.
        """
        child = self._child_factory(role, self._argv[role], log_format=self._settings.log_format)
        self._children[role] = child
        await child.start()
        process = self._state.process(role)
        process.pid, process.state, process.started_at = child.pid, "starting", time.time()
        self._save_state()
        ready = asyncio.create_task(child.wait_ready(self._settings.supervisor.start_timeout_s))
        stopped = asyncio.create_task(self._stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not ready.done():
            ready.cancel()
            return None
        notice = ready.result()  # raises ChildStartError
        process.state = "running"
        self._save_state()
        return notice

    async def _watch(self) -> int:
        """Wait for a stop signal; restart children that die, until one crash-loops."""
        while True:
            exits = {asyncio.create_task(c.wait()): role for role, c in self._children.items()}
            stopped = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopped, *exits):
                task.cancel()
            if stopped in done:
                logger.info("stopping")
                return await self._shutdown(EXIT_OK)
            role = next(exits[t] for t in done if t in exits)
            if not await self._restart(role):
                return await self._shutdown(EXIT_OK if self._stop.is_set() else EXIT_CHILD_FAILED)

    async def _restart(self, role: str) -> bool:
        """Restart a dead child under the policy; False to stop the whole appliance."""
        while True:
            child = self._children[role]
            code = child.returncode
            process = self._state.process(role)
            ran_for = time.time() - (process.started_at or time.time())
            reason = _describe_exit(code)
            process.last_exit_code, process.last_exit_at = code, time.time()
            process.last_exit_reason = reason
            delay = self._policies[role].next_delay(time.monotonic(), ran_for)
            if delay is None:
                process.state = "failed"
                self._save_state()
                self._say(
                    f"inferencehub: {role} {reason} and keeps crashing; giving up", error=True
                )
                tail = [line for line in child.stderr_tail()[-5:] if line.strip()]
                for line in tail:
                    self._say(f"  {line}", error=True)
                return False
            process.state = "restarting"
            process.restarts += 1
            self._save_state()
            logger.warning("%s %s; restarting in %.1fs", role, reason, delay)
            try:
                async with asyncio.timeout(delay):
                    await self._stop.wait()
                return False  # stop requested while waiting
            except TimeoutError:
                pass
            await child.stop(0.0)  # reap the dead one's pipes and tasks
            try:
                notice = await self._start(role)
            except ChildStartError as exc:
                logger.error("%s", exc)
                await self._children[role].stop(self._settings.supervisor.stop_timeout_s)
                continue  # counts as another crash
            if notice is None:
                return False
            logger.info("%s restarted (pid %s)", role, self._children[role].pid)
            return True

    def _save_state(self) -> None:
        if self._state_path is not None:
            write_state_atomic(self._state_path, self._state)

    async def _shutdown(self, code: int) -> int:
        """Gateway first (stops accepting, drains), then the worker: reverse start order."""
        for role in reversed(self._argv):
            child = self._children.get(role)
            if child is None:
                continue
            await child.stop(0.0 if self._force else self._settings.supervisor.stop_timeout_s)
            self._state.process(role).state = "stopped"
        return EXIT_INTERRUPTED if self._force else code


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
