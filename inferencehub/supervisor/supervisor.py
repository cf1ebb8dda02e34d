"""`inferencehub up`: the runtime dir, the worker then the gateway, and an ordered stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Final

from inferencehub.config import Settings
from inferencehub.runtime import HANDLED_SIGNALS, Role, RuntimeDir, self_command
from inferencehub.supervisor.child import ChildProcess, ChildStartError

logger = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_CHILD_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130


class Supervisor:
    """Owns the children's lifecycle; its own work is waiting."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = asyncio.Event()
        self._force = False
        self._children: list[ChildProcess] = []

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set() and sig is signal.SIGINT:
            self._force = True  # second Ctrl+C: skip the grace period
            for child in self._children:
                child.kill()
        self._stop.set()

    async def run(self) -> int:
        """Start everything, serve until a signal or a child's death, stop in order."""
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        with RuntimeDir.create(self._settings.supervisor.runtime_dir) as runtime:
            self._settings.to_child_file(runtime.settings_file)
            address = runtime.worker_address
            settings_arg = ("--settings", str(runtime.settings_file), "--lifeline")
            try:
                worker = await self._start(
                    "worker", self_command("worker", *settings_arg, "--socket", address)
                )
                if worker is None:
                    return await self._shutdown(EXIT_INTERRUPTED)
                gateway = await self._start(
                    "gateway", self_command("gateway", *settings_arg, "--worker", address)
                )
                if gateway is None:
                    return await self._shutdown(EXIT_INTERRUPTED)
            except ChildStartError as exc:
                print(f"inferencehub: {exc}", file=sys.stderr, flush=True)
                return await self._shutdown(EXIT_CHILD_FAILED)
            host = self._settings.gateway.host
            shown = f"[{host}]" if ":" in host else host
            print(
                f"InferenceHub ready: http://{shown}:{gateway['http_port']}  "
                f"grpc {shown}:{gateway['grpc_port']}  "
                f"models {self._settings.worker.models_dir}",
                flush=True,
            )
            return await self._watch()

    async def _start(self, role: Role, argv: list[str]) -> dict[str, object] | None:
        """Start a child and wait until it is ready; None if a stop signal came first."""
        child = ChildProcess(role, argv)
        self._children.append(child)
        await child.start()
        ready = asyncio.create_task(child.wait_ready(self._settings.supervisor.start_timeout_s))
        stopped = asyncio.create_task(self._stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not ready.done():
            ready.cancel()
            return None
        return ready.result()

    async def _watch(self) -> int:
        exits = {asyncio.create_task(c.wait()): c for c in self._children}
        stopped = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, *exits):
            task.cancel()
        if stopped in done:
            logger.info("stopping")
            return await self._shutdown(EXIT_OK)
        dead = next(exits[t] for t in done if t in exits)
        print(
            f"inferencehub: {dead.role} exited unexpectedly with code {dead.returncode}; stopping",
            file=sys.stderr,
            flush=True,
        )
        return await self._shutdown(EXIT_CHILD_FAILED)

    async def _shutdown(self, code: int) -> int:
        """Gateway first (stops accepting, drains), then the worker: reverse start order."""
        for child in reversed(self._children):
            await child.stop(0.0 if self._force else self._settings.supervisor.stop_timeout_s)
        return EXIT_INTERRUPTED if self._force else code
