"""`inferencehub bundle`: signing keys, and signed one-file bundles of a model (docs/bundles.md).

All local: nothing here talks to a hub (`models import` and `pull` do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inferencehub.cli.common import JsonOption, exit_on_hub_error, out

app = typer.Typer(help="Signing keys and signed model bundles.", no_args_is_help=True)


@app.command("keygen")
def keygen(
    directory: Annotated[Path, typer.Argument(help="Where to write the key pair.")],
) -> None:
    """Write an Ed25519 key pair: bundle-signing.key (private, 0600) and bundle-signing.pub."""
    from inferencehub.bundles.signing import fingerprint, generate_key_pair, load_public_key

    with exit_on_hub_error(1):
        private, public = generate_key_pair(directory)
        print_fingerprint = fingerprint(load_public_key(public))
    out.print(f"private key {private} (keep it secret; sign with --key)")
    out.print(f"public key  {public} (give it to hubs: up --trust)")
    out.print(f"fingerprint {print_fingerprint}", highlight=False)


def _model_folder(model: str, models_dir: Path | None) -> Path:
    """A model folder path, or a model name in the repository (--models, else the default)."""
    path = Path(model)
    if path.is_dir():
        return path
    from inferencehub.runtime import default_models_dir

    return (models_dir or default_models_dir()) / model


@app.command("create")
def create(
    model: Annotated[str, typer.Argument(help="A model folder, or a model name in --models.")],
    key: Annotated[Path, typer.Option("--key", help="Private key (bundle-signing.key).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The bundle to write.")],
    versions: Annotated[
        str | None, typer.Option(help="Comma-separated versions (default: every version).")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option("--models", help="Repository to find a model name in.")
    ] = None,
) -> None:
    """Sign a model's versions, model.toml and labels into one bundle file (any served model:
    how a model moves from box to box)."""
    from inferencehub.bundles.archive import create_bundle
    from inferencehub.bundles.signing import load_private_key

    chosen = [v.strip() for v in versions.split(",") if v.strip()] if versions else None
    with exit_on_hub_error(1):
        manifest = create_bundle(
            _model_folder(model, models_dir), load_private_key(key), output, chosen
        )
    out.print(
        f"wrote {output}: {manifest.model} version(s) {', '.join(manifest.versions)}, "
        f"{len(manifest.files)} files, {manifest.total_size:,} bytes",
        highlight=False,
    )


@app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle file.")],
    trust: Annotated[list[Path], typer.Option(help="A trusted public key (PEM); repeatable.")],
    max_bytes: Annotated[int, typer.Option(help="Largest unpacked size accepted.")] = 4 << 30,
    as_json: JsonOption = False,
) -> None:
    """Check a bundle's signature and every file's hash; exit 1 naming what failed."""
    from inferencehub.bundles.archive import open_bundle
    from inferencehub.bundles.signing import load_trusted

    with exit_on_hub_error(1):
        verified = open_bundle(bundle, load_trusted(trust), None, max_bytes)
    manifest = verified.manifest
    summary = {
        "model": manifest.model,
        "versions": list(manifest.versions),
        "signer": verified.signer,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in manifest.files],
        "total_bytes": manifest.total_size,
        "created": manifest.created,
        "hub_version": manifest.hub_version,
    }
    if as_json:
        out.print_json(data=summary)
        return
    from inferencehub.cli.output import render_bundle

    out.print(render_bundle(summary))
