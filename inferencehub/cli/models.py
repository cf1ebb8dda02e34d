"""`inferencehub models`: list, show, load and unload the served models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from inferencehub.cli.common import JsonOption, UrlOption, err, fail, hub, out

app = typer.Typer(help="List, show, load and unload models.", no_args_is_help=False)


def _show_models(found: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        out.print_json(data={"models": found})
        return
    from inferencehub.cli.output import render_models

    out.print(render_models(found))


@app.callback(invoke_without_command=True)
def models(context: typer.Context, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List the served models: versions, state, provider, inputs and outputs."""
    if context.invoked_subcommand is not None:
        return
    with hub(url) as client:
        found = client.models()
    _show_models(found, as_json)


@app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one model's versions, states, signatures and execution layout (what tuning
    measured)."""
    with hub(url) as client:
        found = [client.model(name)]
    _show_models(found, as_json)
    if not as_json:
        from inferencehub.cli.output import render_tuning

        out.print(render_tuning(found[0]))


@app.command("load")
def models_load(
    name: Annotated[str, typer.Argument(help="Model folder name in the repository.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """(Re)load every version of a model from the server's repository."""
    with hub(url) as client:
        client.load_model(name)
        found = [client.model(name)]
    _show_models(found, as_json)


@app.command("unload")
def models_unload(
    name: Annotated[str, typer.Argument(help="Model name.")],
    url: UrlOption = None,
) -> None:
    """Unload a model (requests get 409 until it is loaded again)."""
    with hub(url) as client:
        client.unload_model(name)
    err.print(f"unloaded {name}")


@app.command("import")
def models_import(
    bundle: Annotated[Path, typer.Argument(help="A signed bundle (.ihb; docs/bundles.md).")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace versions that already exist.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a signed bundle through the running hub: verified against its trusted keys,
    gated, renamed into the repository and loaded; any failure changes nothing."""
    if not bundle.is_file():
        fail(f"{bundle} is not a file", 2)
    with hub(url) as client:
        reply = client.import_model(bundle, replace=replace)
    show_import(reply, as_json)


def show_import(reply: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(data=reply)
        return
    from inferencehub.cli.output import describe_import

    out.print(describe_import(reply))
    _show_models([reply["model"]], as_json=False)
