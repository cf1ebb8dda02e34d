"""The `inferencehub` command, assembled from one module per command group:

serve    up, worker, and the hidden gateway / probe-provider roles `up` re-executes
predict  one request from an image or .npy tensors
models   list, show, load, unload, import
bundle   signing keys; create and verify signed bundles
pull     download a bundle or .onnx, then import it (or save it)
route    routing changes and canaries (rules in route_change)
status   the live view
keys     API keys
output   how results, tables and lines are rendered

Commands import the client SDK and the role packages inside their bodies, so that importing
this package (every process of the hub does) stays light. Its modules never import this one,
and nothing outside it does but `__main__`.
"""

from __future__ import annotations

import typer

from inferencehub import __version__
from inferencehub.cli import bundle, keys, models, predict, pull, route, serve, status
from inferencehub.cli.common import out

app = typer.Typer(
    name="inferencehub",
    help="An offline inference appliance for ONNX models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version_command() -> None:
    """Print the InferenceHub version."""
    out.print(f"inferencehub {__version__}")


# Registration order is the order `--help` lists them in.
app.command()(serve.up)
app.command("probe-provider", hidden=True)(serve.probe_provider)
app.command()(serve.worker)
app.command(hidden=True)(serve.gateway)
app.command()(predict.predict)
app.add_typer(models.app, name="models")
app.add_typer(bundle.app, name="bundle")
app.command()(pull.pull)
app.command()(route.route)
app.command()(status.status)
app.add_typer(keys.app, name="keys")
app.command("version")(version_command)


def main() -> None:
    """The console script and `python -m inferencehub` (the frozen binary's entry too)."""
    app()
