"""The serving roles: `up` (the supervisor), `worker` (also a remote worker), and the hidden
`gateway` and `probe-provider` that `up` and the worker re-execute this program as.

Each role's package is imported inside its command, so one role never loads another's
dependencies (the supervisor neither grpc nor onnxruntime).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from inferencehub.cli.common import err, exit_on_hub_error, fail
from inferencehub.config import LogFormat, ProviderChoice, Settings, load_settings
from inferencehub.errors import HubError
from inferencehub.logging import configure_logging
from inferencehub.runtime import event_loop_factory, is_loopback


def up(
    models: Annotated[Path | None, typer.Option(help="Model repository directory.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    http_port: Annotated[int | None, typer.Option(help="HTTP port (default 8000).")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port (default 8001).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config file (default ./inferencehub.toml).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    log_format: Annotated[LogFormat | None, typer.Option(help="text or json.")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate (HTTPS, gRPC+TLS).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for --tls-cert.")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback host without API keys.")
    ] = False,
    provider: Annotated[
        ProviderChoice | None,
        typer.Option(help="auto, measure, tensorrt, cuda, coreml, directml, openvino or cpu."),
    ] = None,
    provider_policy: Annotated[
        str | None, typer.Option(help="fallback (default) or strict.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes, each with every model (default 1; see docs/scale.md)."
        ),
    ] = None,
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            help="Ed25519 public key (PEM) whose signed bundles are imported; repeatable "
            "(adds to [repository] trusted_keys; docs/bundles.md)."
        ),
    ] = None,
    require_signed: Annotated[
        bool,
        typer.Option(
            "--require-signed", help="Serve only versions from bundles signed by a trusted key."
        ),
    ] = False,
) -> None:
    """Serve a model repository over HTTP and gRPC until Ctrl-C."""
    with exit_on_hub_error():
        settings = load_settings(
            config,
            {
                "worker.models_dir": models,
                "gateway.host": host,
                "gateway.http_port": http_port,
                "gateway.grpc_port": grpc_port,
                "log_level": log_level,
                "log_format": log_format,
                "gateway.insecure": insecure or None,
                "gateway.tls_cert": tls_cert,
                "gateway.tls_key": tls_key,
                "worker.provider": provider,
                "worker.provider_policy": provider_policy,
                "supervisor.workers": workers,
                "repository.trusted_keys": [str(key) for key in trust or []] or None,
                "repository.require_signed": require_signed or None,
            },
        )
    if not settings.worker.models_dir.is_dir() and settings.worker_placements():
        fail(f"model repository {settings.worker.models_dir} is not a directory", 2)
    if not settings.worker_placements() and not settings.gateway.remote_workers:
        fail("no workers: --workers is 0 and the config lists no gateway.remote_workers", 2)
    _refuse_open_door(settings)
    configure_logging("supervisor", settings.log_level, settings.log_format)
    from inferencehub.supervisor.supervisor import Supervisor

    with exit_on_hub_error():  # e.g. the runtime dir is not private
        code = asyncio.run(Supervisor(settings).run())
    raise typer.Exit(code)


def _refuse_open_door(settings: Settings) -> None:
    """No keys and a public address would let anyone in: refuse unless told --insecure."""
    from inferencehub.keys import KeyStore

    host = settings.gateway.host
    if is_loopback(host) or settings.gateway.insecure:
        return
    assert settings.data_dir is not None
    with exit_on_hub_error():
        keys = KeyStore(settings.data_dir, settings.gateway.api_keys_file).load()
    if not keys:
        fail(
            f"refusing to listen on {host} with no API keys: anyone could use it. Create one "
            "with `inferencehub keys create NAME`, or pass --insecure to serve without keys.",
            2,
        )


def _run_child(
    role: str,
    settings: Settings,
    serve: Callable[..., Awaitable[None]],
    *,
    lifeline: bool,
    **kwargs: Any,
) -> None:
    """Run one role's `serve(settings, stop, **kwargs)` until SIGTERM, SIGINT or the lifeline
    ends; a HubError is the role's one stderr line and exit 2 (the supervisor keeps its tail)."""
    from inferencehub.runtime import run_role

    configure_logging(role, settings.log_level, settings.log_format)

    async def serve_role(s: Settings, stop: asyncio.Event) -> None:
        await serve(s, stop, **kwargs)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
            runner.run(run_role(serve_role, settings, lifeline=lifeline))
    except HubError as exc:
        err.print(f"{role}: {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def probe_provider(
    provider: Annotated[str, typer.Option()],
    model: Annotated[Path, typer.Option()],
    options: Annotated[str, typer.Option()] = "{}",
) -> None:
    """Open a model on one execution provider and run it once (the worker's crash-safe trial)."""
    import json

    from inferencehub.worker.probe import probe_here

    answer = probe_here(provider, model, json.loads(options))
    print(json.dumps(answer), flush=True)  # the worker reads this line
    raise typer.Exit(0 if answer["ok"] else 1)


def worker(
    listen: Annotated[
        str | None, typer.Option(help="host:port to serve a remote gateway on (mutual TLS).")
    ] = None,
    models: Annotated[Path | None, typer.Option(help="Model repository directory.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate of this worker.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="PEM CA whose client certificates may connect.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Host only this model (repeatable).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Config file.")] = None,
    settings: Annotated[Path | None, typer.Option("--settings", hidden=True)] = None,
    socket: Annotated[str | None, typer.Option("--socket", hidden=True)] = None,
    name: Annotated[str, typer.Option("--name", hidden=True)] = "worker",
    lifeline: Annotated[bool, typer.Option(hidden=True)] = False,
    notify_fd: Annotated[int | None, typer.Option("--notify-fd", hidden=True)] = None,
) -> None:
    """Run a compute worker for a gateway on another machine: `--listen HOST:PORT` with
    `--tls-cert`, `--tls-key` and `--client-ca` (mutual TLS: never plaintext on a network).
    (`up` starts its local workers itself, on private Unix sockets.)"""
    from inferencehub.worker.main import ServerTLS, run_worker

    hosted = frozenset(only) if only else None
    if settings is not None and socket is not None:  # started by `up`
        _run_child(
            name,
            Settings.from_child_file(settings),
            run_worker,
            address=socket,
            notify_fd=notify_fd,
            lifeline=lifeline,
            only=hosted,
        )
        return
    if listen is None:
        fail("worker needs --listen HOST:PORT (or run `inferencehub up`)", 2)
    if tls_cert is None or tls_key is None or client_ca is None:
        fail(
            "a listening worker needs --tls-cert, --tls-key and --client-ca: the gateway and "
            "the worker authenticate each other, and nothing crosses a network in plaintext",
            2,
        )
    with exit_on_hub_error():
        tls = ServerTLS.read(tls_cert, tls_key, client_ca)
        loaded = load_settings(config, {"worker.models_dir": models})
    if not loaded.worker.models_dir.is_dir():
        fail(f"model repository {loaded.worker.models_dir} is not a directory", 2)
    _run_child("worker", loaded, run_worker, address=listen, tls=tls, only=hosted, lifeline=False)


def gateway(
    settings: Annotated[Path, typer.Option("--settings")],
    worker: Annotated[list[str] | None, typer.Option("--worker")] = None,
    state: Annotated[Path | None, typer.Option("--state")] = None,
    lifeline: bool = False,
    notify_fd: Annotated[int | None, typer.Option("--notify-fd")] = None,
) -> None:
    """Run the gateway (started by `up`)."""
    from inferencehub.gateway.main import run_gateway

    _run_child(
        "gateway",
        Settings.from_child_file(settings),
        run_gateway,
        worker_addresses=worker or [],
        state_file=state,
        notify_fd=notify_fd,
        lifeline=lifeline,
    )
