"""The live loop of `inferencehub status`: it owns the terminal (the alternate screen, single
key presses in cbreak mode) and polls the server from a thread, so that a slow or dead server
never delays a key press. What a frame shows is `status_view.render`'s business.
"""

from __future__ import annotations

import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live

from inferencehub.client import ClientError, HttpClient, ServerUnreachableError
from inferencehub.status_view import render

TICK_S = 0.1  # how often the live loop looks at keys and the terminal size


def fetch_snapshot(client: HttpClient, url: str) -> dict[str, Any]:
    """One GET /v1/status plus "url"; GET /v1/models only for a gateway that lacks "models"."""
    snapshot = {"url": url, **client.status()}
    if "models" not in snapshot:
        snapshot["models"] = client.models()
    return snapshot


def describe_error(exc: ClientError, url: str) -> str:
    """One red line: why the last refresh failed, and that the view keeps trying."""
    if isinstance(exc, ServerUnreachableError):
        reason = exc.message.rpartition(f"{url.rstrip('/')}: ")[2] or "no answer"
        reason = re.sub(r"^\[Errno -?\d+\]\s*", "", reason)
        return f"cannot reach {url}: {reason[:1].lower()}{reason[1:]} — retrying"
    return f"{url} answered {exc.status}: {exc.message} — retrying"


class Poller:
    """Fetches in a thread, so a slow or unreachable server never delays a key press."""

    def __init__(self, fetch: Callable[[], dict[str, Any]], url: str, interval_s: float) -> None:
        self._fetch, self._url, self._interval_s = fetch, url, interval_s
        self._lock = threading.Lock()
        self._latest: tuple[dict[str, Any] | None, str | None, float] = (None, None, 0.0)
        self._stop = threading.Event()
        self.changed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=0.5)

    def latest(self) -> tuple[dict[str, Any] | None, str | None, float]:
        """The last good snapshot, the last error (None after a success), when it was fetched."""
        with self._lock:
            return self._latest

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            snapshot, fetched_at = self._latest[0], self._latest[2]
            try:
                snapshot, error, fetched_at = self._fetch(), None, began
            except ClientError as exc:
                error = describe_error(exc, self._url)
            except Exception as exc:  # a live monitor outlives any one bad answer
                error = f"{self._url}: {exc!r} — retrying"
            with self._lock:
                self._latest = (snapshot, error, fetched_at)
            self.changed.set()
            self._stop.wait(max(0.0, self._interval_s - (time.monotonic() - began)))


@contextmanager
def key_reader(stream: TextIO) -> Iterator[Callable[[float], str]]:
    """Yields `read(timeout) -> keys`. A terminal goes to cbreak mode (keys without Enter,
    Ctrl-C still a signal) and is restored after; other stdins are never read."""
    try:
        fd = stream.fileno()
        interactive = os.isatty(fd)
    except (AttributeError, ValueError, OSError):
        interactive = False
    if not interactive:

        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""

        yield wait
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 64).decode(errors="ignore") if ready else ""

    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_live(
    fetch: Callable[[], dict[str, Any]],
    url: str,
    console: Console,
    interval_s: float,
    stdin: TextIO,
) -> int:
    """Redraw on every answer and resize until q, Ctrl-C or SIGTERM; always exits 0."""
    poller = Poller(fetch, url, interval_s)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # handlers only record
    try:
        with (
            key_reader(stdin) as read_keys,
            Live(console=console, screen=True, auto_refresh=False) as live,
        ):
            poller.start()
            drawn: tuple[Any, ...] = ()
            while not stop.is_set():
                snapshot, error, fetched_at = poller.latest()
                size = console.size
                age = int(time.monotonic() - fetched_at) if error and snapshot else 0
                if (snapshot, error, size, age) != drawn:
                    drawn = (snapshot, error, size, age)
                    footer = f"q quit · every {interval_s:g} s"
                    footer += f" · showing data from {age} s ago" if age else ""
                    frame = render(
                        snapshot, error, url=url, width=size.width, height=size.height,
                        footer=footer,
                    )  # fmt: skip
                    live.update(frame, refresh=True)
                if "q" in read_keys(TICK_S).lower():
                    break
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
