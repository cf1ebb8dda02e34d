"""Process plumbing shared by all roles: argv for children, the private runtime dir, stop events."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from inferencehub.errors import ConfigError

Role = Literal["supervisor", "gateway", "worker", "probe-provider"]

HANDLED_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# sun_path is 104 bytes on macOS and 108 on Linux; one rule for both.
MAX_UDS_PATH_BYTES: Final = 103
WORKER_SOCKET: Final = "worker.sock"
SETTINGS_FILE: Final = "settings.json"

T = TypeVar("T")


def self_command(role: Role, *args: str) -> list[str]:
    """Argv that re-enters this program as `role`, from source or from a PyInstaller binary.

    A one-file binary's children reuse the directory it unpacked itself into: PyInstaller >= 6.9
    treats a process started from `sys.executable` with the inherited environment as a worker
    of the running app (no second extraction), and the launcher removes the directory once the
    supervisor exits, after it has stopped its children. So no PYINSTALLER_RESET_ENVIRONMENT
    here: that is for processes that outlive the app (docs/packaging.md).
    """
    if getattr(sys, "frozen", False):  # sys.executable *is* the app binary
        return [sys.executable, role, *args]
    return [sys.executable, "-m", "inferencehub", role, *args]


def frozen_onefile() -> bool:
    """Whether this is a PyInstaller one-file binary, running from its unpacked _MEI* dir."""
    unpacked = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or not unpacked:
        return False
    return Path(unpacked).name.startswith("_MEI")


def follow_onefile_launcher(argv: Sequence[str]) -> None:
    """Make `up` in a one-file binary get each signal once and never outlive its launcher.

    A one-file binary runs as two processes: the launcher (PyInstaller's bootloader, which
    unpacked the app into a _MEI* temp dir and removes it when we exit) and this one, its child
    in the same process group. The launcher forwards every signal it gets to us, so a
    terminal's Ctrl+C, sent to the whole foreground group, arrived twice and read as the
    second, forcing Ctrl+C. Out of that group, signals reach us only through the launcher, once.
    Should the launcher be killed, the kernel sends us SIGTERM (Linux) and we remove the
    unpacked dir on the way out, since nobody else will. Called by the binary's runtime hook
    (packaging/pyi_rth_inferencehub.py) before anything else; a no-op elsewhere.
    """
    if not frozen_onefile() or list(argv[1:2]) != ["up"]:
        return
    launcher = os.getppid()
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if sys.platform == "linux":
        _set_parent_death_signal(signal.SIGTERM)
    atexit.register(_remove_orphaned_unpack_dir, launcher, Path(getattr(sys, "_MEIPASS", "")))
    if os.getppid() != launcher:  # it died before the death signal was armed
        sys.exit("inferencehub: the launcher exited during start-up")


def _set_parent_death_signal(sig: signal.Signals) -> None:
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)


def _remove_orphaned_unpack_dir(launcher: int, unpacked: Path) -> None:
    if os.getppid() != launcher and unpacked.name.startswith("_MEI"):
        shutil.rmtree(unpacked, ignore_errors=True)


def default_models_dir() -> Path:
    """./models, or, in a binary started where there is none, the models/ beside the binary.

    `python packaging/build.py` copies the demo models next to what it builds, so
    `dist/inferencehub up` serves them from any directory. A relative path is returned as such;
    `load_settings` resolves it against the working directory.
    """
    here = Path("models")
    if getattr(sys, "frozen", False) and not here.is_dir():
        beside = Path(sys.executable).resolve().parent / "models"
        if beside.is_dir():
            return beside
    return here


class RuntimeDir:
    """A private per-instance directory (0700) holding the worker socket and settings file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def worker_address(self) -> str:
        return self.socket_address(WORKER_SOCKET)

    def socket_address(self, name: str) -> str:
        """unix:// address of a socket in this dir (one per local worker).

        Raises:
            ConfigError: the path is too long for a Unix socket.
        """
        sock = self.path / name
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
                for extra in (*path.glob("worker-*.sock"), *path.glob("settings-*.json")):
                    extra.unlink(missing_ok=True)


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


def write_private_atomically(path: Path, text: str) -> None:
    """Write a file only this user may read (0600), creating its directory (0700) if needed,
    by renaming a finished sibling into place: readers (another process, another pod sharing
    the directory) see the old contents or the new, never half. The sibling's name carries the
    pid, so two writers never share one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def usable_cores() -> int:
    """The cores this process may run on (a CPU pin, taskset or a container's cpuset), which
    may be fewer than the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def pin_to_cpus(cpus: Sequence[int]) -> None:
    """Run this process, every thread it already has and every one it starts, on `cpus` only.

    Raises:
        ConfigError: the platform cannot pin (not Linux), or a CPU is not available here.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("cpus needs Linux (CPU affinity); remove it from the placement")
    allowed = os.sched_getaffinity(0)
    missing = sorted(set(cpus) - allowed)
    if missing:
        offered = ", ".join(str(c) for c in sorted(allowed))
        raise ConfigError(f"cpus {missing} are not available here; this worker may use {offered}")
    threads = [int(t) for t in os.listdir("/proc/self/task")]  # threads made by imports too
    for thread in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(thread, set(cpus))


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
