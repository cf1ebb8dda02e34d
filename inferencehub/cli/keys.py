"""`inferencehub keys`: API keys are files on this machine, so these commands need no server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferencehub.cli.common import JsonOption, err, exit_on_hub_error, out
from inferencehub.config import load_settings

if TYPE_CHECKING:
    from inferencehub.keys import KeyStore

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where keys live (default: from the config).")
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Config file.")]


def _key_store(data_dir: Path | None, config: Path | None) -> KeyStore:
    from inferencehub.keys import KeyStore

    with exit_on_hub_error():
        settings = load_settings(config, {"data_dir": data_dir})
    assert settings.data_dir is not None
    # An explicit --data-dir means its keys.json, whatever file the config names.
    return KeyStore(settings.data_dir, None if data_dir else settings.gateway.api_keys_file)


@app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name to recognise and revoke the key by.")],
    rate: Annotated[str | None, typer.Option(help="Rate limit, e.g. 50/s or 3000/min.")] = None,
    models_: Annotated[
        str | None, typer.Option("--models", help="Comma-separated models it may use (all).")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once (only a salted hash is stored)."""
    from inferencehub.keys import parse_rate

    store = _key_store(data_dir, config)
    with exit_on_hub_error():
        per_s = parse_rate(rate) if rate else None
        allowed = tuple(m.strip() for m in models_.split(",") if m.strip()) if models_ else None
        secret = store.create(name, per_s, allowed)
    err.print(f"created key '{name}' in {store.path}; it is shown only now:")
    print(secret)


@app.command("list")
def keys_list(
    data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """List keys: name, rate limit, allowed models (never the secrets)."""
    store = _key_store(data_dir, config)
    with exit_on_hub_error():
        keys = store.load()
    rows = [
        {
            "name": k.name,
            "created_at": k.created_at,
            "rate_per_s": k.rate_per_s,
            "models": list(k.models) if k.models else None,
        }
        for k in keys
    ]
    if as_json:
        out.print_json(data={"keys": rows})
        return
    from inferencehub.cli.output import render_keys

    out.print(render_keys(rows, store.path))


@app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key; a running server stops accepting it within a second or two."""
    store = _key_store(data_dir, config)
    with exit_on_hub_error():
        store.revoke(name)
    err.print(f"revoked key '{name}'")
