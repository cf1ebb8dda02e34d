"""What every command shares: the consoles, the one-line failure, the common options, and the
two context managers that turn errors into that failure.

Loading this module imports only typer and rich: the client SDK (httpx, numpy) is imported
when a command connects, so `up` (the long-lived supervisor), `keys` and `version` never pay
for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from inferencehub import DEFAULT_URL
from inferencehub.errors import HubError

if TYPE_CHECKING:
    from inferencehub.client import Client

out = Console()
err = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="INFERENCEHUB_URL",
        show_default=DEFAULT_URL,
        help="Server URL: http://host:port or grpc://host:port.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """One red line on stderr and a non-zero exit: a CLI error is never a traceback."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def exit_on_hub_error(code: int = 2) -> Iterator[None]:
    """Local problems (a bad config, an unreadable key file, a runtime dir that is not
    private) end the command as one line with `code`."""
    try:
        yield
    except HubError as exc:
        fail(exc.message, code)


def resolve_url(url: str | None) -> str:
    """--url, else $INFERENCEHUB_URL (typer reads it), else the local hub."""
    return DEFAULT_URL if url is None else url


@contextmanager
def hub(url: str | None, *, timeout_s: float | None = None) -> Iterator[Client]:
    """A client of the server at `url` (API key from $INFERENCEHUB_API_KEY), closed on exit.

    A URL the SDK cannot use exits 2; a call the server refuses or cannot answer exits 1 with
    the server's message. Print results after the block, so nothing half-shown precedes it.
    """
    from inferencehub.client import DEFAULT_TIMEOUT_S, ClientError, connect

    api_key = os.environ.get("INFERENCEHUB_API_KEY") or None
    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        client = connect(resolve_url(url), api_key=api_key, timeout_s=timeout_s)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        with client:
            yield client
    except ClientError as exc:
        fail(exc.message)
