"""`inferencehub pull`: fetch a bundle (or a bare .onnx) on a connected machine, then import it
into a hub, or only save it (-o) to carry to an offline box."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated
from urllib.parse import urlsplit

import typer

from inferencehub.cli.common import JsonOption, UrlOption, err, exit_on_hub_error, hub, out
from inferencehub.cli.models import show_import


def pull(
    source: Annotated[str, typer.Argument(metavar="URL", help="https:// (or http://) URL.")],
    sha256: Annotated[
        str | None, typer.Option(help="Expected SHA-256 of the file (hex); checked.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Only save the file here; import nothing."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="For a bare .onnx: the model it becomes the next version of."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace versions that already exist.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download a bundle or a bare .onnx, then import it into the hub (or only save it: -o).

    A progress bar shows the transfer; an interrupted download resumes when run again; the
    digest is checked; the hub at --url verifies a bundle's signature.
    """
    from inferencehub.bundles.download import download
    from inferencehub.runtime import default_data_dir

    file_name = PurePosixPath(urlsplit(source).path).name or "download"
    bare_onnx = file_name.endswith(".onnx")
    if bare_onnx and output is None and not model:
        model = file_name.removesuffix(".onnx")
    dest = output or default_data_dir() / "downloads" / file_name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exit_on_hub_error(1):
        download(source, dest, sha256=sha256, console=err)
    if output is not None:
        out.print(f"saved {dest}")
        return
    try:
        with hub(url) as client:
            reply = client.import_model(
                dest, replace=replace, onnx_model=model if bare_onnx and model else ""
            )
    except typer.Exit:
        err.print(f"the download is kept in {dest}")
        raise
    dest.unlink(missing_ok=True)
    show_import(reply, as_json)
