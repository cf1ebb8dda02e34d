"""Process plumbing shared by all roles: argv for children, the private runtime dir, stop events."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from inferencehub.errors import ConfigError

Role = Literal["supervisor", "gateway", "worker"]

HANDLED_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# sun_path is 104 bytes on macOS and 108 on Linux; one rule for both.
MAX_UDS_PATH_BYTES: Final = 103
WORKER_SOCKET: Final = "worker.sock"
SETTINGS_FILE: Final = "settings.json"

T = TypeVar("T")


def self_command(role: Role, *args: str) -> list[str]:
    """Argv that re-enters this program as `role`, from source or from a PyInstaller binary."""
    if getattr(sys, "frozen", False):  # sys.executable *is* the app binary
        return [sys.executable, role, *args]
    return [sys.executable, "-m", "inferencehub", role, *args]


class RuntimeDir:
    """A private per-instance directory (0700) holding the worker socket and settings file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def worker_address(self) -> str:
        sock = self.path / WORKER_SOCKET
        if len(os.fsencode(sock)) > MAX_UDS_PATH_BYTES:
            raise ConfigError(
                f"socket path {sock} is over {MAX_UDS_PATH_BYTES} bytes; use a shorter runtime dir"
            )
        return f"unix://{sock}"

    @property
    def settings_file(self) -> Path:
        return self.path / SETTINGS_FILE

    @classmethod
    @contextlib.contextmanager
    def create(cls, path: Path | None = None) -> Iterator[RuntimeDir]:
        """Make (or adopt) a private directory and remove it afterwards.

        Raises:
            ConfigError: an existing directory is not owned by us or is open to others.
        """
        if path is None:
            parent = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
            path = Path(tempfile.mkdtemp(prefix="inferencehub-", dir=parent))  # mode 0700
            owned = True
        else:
            owned = not path.exists()
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(path)
        runtime = cls(path)
        try:
            yield runtime
        finally:
            if owned:
                shutil.rmtree(path, ignore_errors=True)
            else:
                for name in (WORKER_SOCKET, SETTINGS_FILE):
                    (path / name).unlink(missing_ok=True)


def _check_private(path: Path) -> None:
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ConfigError(f"runtime dir {path} is not owned by this user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(
            f"runtime dir {path} must be private (mode 0700), not {stat.S_IMODE(info.st_mode):o}"
        )


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the ports on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_data_dir() -> Path:
    """Where API keys live unless configured: $XDG_DATA_HOME/inferencehub."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "inferencehub"


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop for a child role: uvloop when asked for or ("auto") when installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("event_loop = 'uvloop' but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def notify(fd: int | None, event: str, **fields: Any) -> None:
    """Tell the supervisor about readiness or a start-up failure: one JSON line on a pipe."""
    if fd is None:
        return
    line = json.dumps({"event": event, **fields}) + "\n"
    with contextlib.suppress(OSError):  # the supervisor may be gone already
        os.write(fd, line.encode())


async def watch_lifeline(stop: asyncio.Event) -> None:
    """Set `stop` when the supervisor's end of our stdin closes (it exited or was killed)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while await reader.read(4096):
            pass
    finally:
        transport.close()
    stop.set()


async def run_role(
    serve: Callable[[T, asyncio.Event], Awaitable[None]], settings: T, *, lifeline: bool
) -> None:
    """Run a child role until SIGTERM/SIGINT or, with `lifeline`, until the supervisor is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in HANDLED_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(watch_lifeline(stop)) if lifeline else None
    try:
        await serve(settings, stop)
    finally:
        for sig in HANDLED_SIGNALS:
            # NOTE: once the loop closes, a late SIGTERM would hit asyncio's handler with a
            # closed wakeup fd; we are exiting anyway, so ignore further stop signals.
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
