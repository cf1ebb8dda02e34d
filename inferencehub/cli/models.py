"""`inferencehub models`: list, show, load and unload the served models."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from inferencehub.cli.common import JsonOption, UrlOption, err, hub, out

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
