"""`inferencehub status`: the live terminal view, or one snapshot for scripts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from inferencehub.cli.common import JsonOption, UrlOption, fail, hub, out, resolve_url


def status(
    url: UrlOption = None,
    as_json: JsonOption = False,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (no live view).")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between refreshes.")
    ] = 1.0,
) -> None:
    """Live view: processes, models, traffic per version, the door. q or Ctrl-C quits.

    With --json, --once, or when stdout is not a terminal, one snapshot is printed instead.
    """
    from functools import partial

    from inferencehub import status_live, status_view
    from inferencehub.client import HttpClient

    shown_url = resolve_url(url)
    # 5 s, not 60: a hung server shows as an error line rather than a stale view.
    with hub(shown_url, timeout_s=5.0) as client:
        if not isinstance(client, HttpClient):
            fail("status needs the HTTP URL (http://host:port)", 2)
        if not (as_json or once) and out.is_terminal:
            fetch = partial(status_live.fetch_snapshot, client, shown_url)
            raise typer.Exit(status_live.run_live(fetch, shown_url, out, interval, sys.stdin))
        snapshot = status_live.fetch_snapshot(client, shown_url)
    if as_json:
        out.print_json(data=snapshot)
        return
    out.print(status_view.render(snapshot, url=shown_url, width=out.width))
