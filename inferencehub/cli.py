"""The `inferencehub` command: up, predict, models, version (plus the hidden child roles)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from inferencehub import __version__
from inferencehub.config import LogFormat, ProviderChoice, Settings, load_settings
from inferencehub.errors import HubError
from inferencehub.logging import configure_logging
from inferencehub.runtime import event_loop_factory, is_loopback

app = typer.Typer(
    name="inferencehub",
    help="An offline inference appliance for ONNX models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="INFERENCEHUB_URL", help="Server URL: http://host:port or grpc://host:port."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
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
) -> None:
    """Serve a model repository over HTTP and gRPC until Ctrl-C."""
    try:
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
            },
        )
    except HubError as exc:
        _fail(exc.message, 2)
    if not settings.worker.models_dir.is_dir() and settings.worker_placements():
        _fail(f"model repository {settings.worker.models_dir} is not a directory", 2)
    if not settings.worker_placements() and not settings.gateway.remote_workers:
        _fail("no workers: --workers is 0 and the config lists no gateway.remote_workers", 2)
    _refuse_open_door(settings)
    configure_logging("supervisor", settings.log_level, settings.log_format)
    from inferencehub.supervisor.supervisor import Supervisor  # lazy: keeps other verbs light

    try:
        code = asyncio.run(Supervisor(settings).run())
    except HubError as exc:  # e.g. the runtime dir is not private
        _fail(exc.message, 2)
    raise typer.Exit(code)


def _refuse_open_door(settings: Settings) -> None:
    """No keys and a public address would let anyone in: refuse unless told --insecure."""
    from inferencehub.keys import KeyStore

    host = settings.gateway.host
    if is_loopback(host) or settings.gateway.insecure:
        return
    assert settings.data_dir is not None
    try:
        keys = KeyStore(settings.data_dir, settings.gateway.api_keys_file).load()
    except HubError as exc:
        _fail(exc.message, 2)
    if not keys:
        _fail(
            f"refusing to listen on {host} with no API keys: anyone could use it. Create one "
            "with `inferencehub keys create NAME`, or pass --insecure to serve without keys.",
            2,
        )


def _run_child(role: str, settings: Settings, serve: Any, *, lifeline: bool, **kwargs: Any) -> None:
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


@app.command("probe-provider", hidden=True)
def probe_provider(
    provider: Annotated[str, typer.Option()],
    model: Annotated[Path, typer.Option()],
    options: Annotated[str, typer.Option()] = "{}",
) -> None:
    """Open a model on one execution provider and run it once (the worker's crash-safe trial)."""
    import json

    from inferencehub.worker.providers import probe_here

    answer = probe_here(provider, model, json.loads(options))
    print(json.dumps(answer), flush=True)  # the worker reads this line
    raise typer.Exit(0 if answer["ok"] else 1)


@app.command()
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
        _fail("worker needs --listen HOST:PORT (or run `inferencehub up`)", 2)
    if tls_cert is None or tls_key is None or client_ca is None:
        _fail(
            "a listening worker needs --tls-cert, --tls-key and --client-ca: the gateway and "
            "the worker authenticate each other, and nothing crosses a network in plaintext",
            2,
        )
    try:
        tls = ServerTLS.read(tls_cert, tls_key, client_ca)
        loaded = load_settings(config, {"worker.models_dir": models})
    except HubError as exc:
        _fail(exc.message, 2)
    if not loaded.worker.models_dir.is_dir():
        _fail(f"model repository {loaded.worker.models_dir} is not a directory", 2)
    _run_child("worker", loaded, run_worker, address=listen, tls=tls, only=hosted, lifeline=False)


@app.command(hidden=True)
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


def _client(url: str) -> Any:
    from inferencehub.client import connect

    try:
        return connect(url, api_key=os.environ.get("INFERENCEHUB_API_KEY") or None)
    except ValueError as exc:
        _fail(str(exc), 2)


def _load_npy(spec: str) -> tuple[str, Any]:
    import numpy as np

    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        _fail(f"--input expects NAME=file.npy, got {spec!r}", 2)
    try:
        return name, np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path} as a .npy array: {exc}", 2)


@app.command()
def predict(
    image: Annotated[Path | None, typer.Argument(help="An image file (JPEG, PNG, ...).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")] = ...,  # type: ignore[assignment]
    version: Annotated[
        str, typer.Option("--version", "-v", help="Version (default: the model's default).")
    ] = "",
    inputs: Annotated[
        list[str] | None, typer.Option("--input", help="Raw tensor NAME=file.npy (repeatable).")
    ] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    as_json: JsonOption = False,
) -> None:
    """Run a model on an image, or on raw tensors with --input."""
    from inferencehub.client import ClientError

    if (image is None) == (not inputs):
        _fail("give either an image file or --input NAME=file.npy", 2)
    if image is not None and not image.is_file():
        _fail(f"image file {image} does not exist", 2)
    tensors = dict(_load_npy(spec) for spec in inputs or [])
    try:
        with _client(url) as hub:
            if image is not None:
                result = hub.predict_image(model, image, version)
            else:
                result = hub.predict(model, tensors, version)
    except ClientError as exc:
        _fail(exc.message)
    if as_json:
        from inferencehub.cli_output import result_to_json

        out.print_json(data=result_to_json(result))
        return
    from inferencehub.cli_output import render_result

    out.print(render_result(result))


models_app = typer.Typer(help="List, show, load and unload models.", no_args_is_help=False)
app.add_typer(models_app, name="models")


def _show_models(found: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        out.print_json(data={"models": found})
        return
    from inferencehub.cli_output import render_models

    out.print(render_models(found))


@models_app.callback(invoke_without_command=True)
def models(
    context: typer.Context,
    url: UrlOption = "http://127.0.0.1:8000",
    as_json: JsonOption = False,
) -> None:
    """List the served models: versions, state, provider, inputs and outputs."""
    if context.invoked_subcommand is not None:
        return
    from inferencehub.client import ClientError

    try:
        with _client(url) as hub:
            found = hub.models()
    except ClientError as exc:
        _fail(exc.message)
    _show_models(found, as_json)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name.")],
    url: UrlOption = "http://127.0.0.1:8000",
    as_json: JsonOption = False,
) -> None:
    """Show one model's versions, states, signatures and execution layout (what tuning
    measured)."""
    from inferencehub.client import ClientError

    try:
        with _client(url) as hub:
            found = [hub.model(name)]
    except ClientError as exc:
        _fail(exc.message)
    _show_models(found, as_json)
    if not as_json:
        from inferencehub.cli_output import render_tuning

        out.print(render_tuning(found[0]))


@models_app.command("load")
def models_load(
    name: Annotated[str, typer.Argument(help="Model folder name in the repository.")],
    url: UrlOption = "http://127.0.0.1:8000",
    as_json: JsonOption = False,
) -> None:
    """(Re)load every version of a model from the server's repository."""
    from inferencehub.client import ClientError

    try:
        with _client(url) as hub:
            hub.load_model(name)
            found = [hub.model(name)]
    except ClientError as exc:
        _fail(exc.message)
    _show_models(found, as_json)


@models_app.command("unload")
def models_unload(
    name: Annotated[str, typer.Argument(help="Model name.")],
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Unload a model (requests get 409 until it is loaded again)."""
    from inferencehub.client import ClientError

    try:
        with _client(url) as hub:
            hub.unload_model(name)
    except ClientError as exc:
        _fail(exc.message)
    err.print(f"unloaded {name}")


@app.command()
def route(
    name: Annotated[str, typer.Argument(help="Model name.")],
    weights: Annotated[
        list[str] | None, typer.Argument(help="New split, e.g. 1=90 2=10 (none: show).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="NAME=VERSION, e.g. canary=2.")
    ] = None,
    promote: Annotated[
        str | None, typer.Option(help="Send all traffic to this version and label it stable.")
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(help="VERSION:FRACTION, e.g. 3:0.05 or 3:5%: mirror requests, record only."),
    ] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Stop mirroring.")] = False,
    canary: Annotated[
        str | None, typer.Option(help="Start an automatic rollout of this version.")
    ] = None,
    ramp: Annotated[str, typer.Option(help="Canary percentages, one step each.")] = "5,25,50,100",
    every: Annotated[str, typer.Option(help="Time per step: 30s, 2m, 1h.")] = "2m",
    max_error_rate: Annotated[
        str, typer.Option(help="Roll back above this canary error rate.")
    ] = "1%",
    max_p99_ratio: Annotated[
        float, typer.Option(help="Roll back when canary p99 / stable p99 exceeds this.")
    ] = 1.5,
    min_requests: Annotated[
        int, typer.Option(help="Canary requests a step needs to advance and to compare p99s.")
    ] = 20,
    baseline: Annotated[
        str, typer.Option(help="Version the canary is compared with (default: stable label).")
    ] = "",
    wait: Annotated[
        bool, typer.Option(help="With --canary: follow it; exit 0 promoted, 1 rolled back.")
    ] = False,
    reset: Annotated[bool, typer.Option(help="Back to model.toml's [routing].")] = False,
    not_sticky: Annotated[
        bool, typer.Option("--not-sticky", help="Random choice even with a routing key.")
    ] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    as_json: JsonOption = False,
) -> None:
    """Show or change, live, how requests reach a model's versions: split, labels, shadow,
    automatic canary. Changes merge into the current policy."""
    from inferencehub.client import ClientError, canary_request

    split = {
        v: _number(w, "weights must be numbers, e.g. 1=90 2=10")
        for v, w in (_pair(w, "VERSION=WEIGHT") for w in weights or [])
    }
    labels = dict(_pair(item, "NAME=VERSION") for item in label or [])
    rollout = None
    if canary is not None:
        rollout = canary_request(
            canary,
            ramp=[
                _number(p.strip().rstrip("%"), "--ramp takes percentages, e.g. 5,25,50,100")
                for p in ramp.split(",")
            ],
            every_s=_duration(every),
            max_error_rate=_fraction(max_error_rate, "--max-error-rate"),
            max_p99_ratio=max_p99_ratio,
            min_requests=min_requests,
            baseline=baseline,
        )
    try:
        with _client(url) as hub:
            shown = hub.model(name)
            current = shown["routing"]
            if rollout is not None:
                info = hub.set_routing(name, canary=rollout)
            elif reset:
                info = hub.set_routing(name, reset=True)
            elif split or labels or promote is not None or shadow or no_shadow or not_sticky:
                if promote is not None:
                    labels["stable"] = promote
                    split = {promote: 100.0}
                mirrored = None if no_shadow else current.get("shadow")
                if shadow is not None:
                    version, _, fraction = shadow.partition(":")
                    mirrored = {"version": version, "fraction": _fraction(fraction, "--shadow")}
                running = current.get("canary", {})
                info = hub.set_routing(
                    name,
                    split or current["split"],
                    {**current["labels"], **labels},
                    False if not_sticky else (True if split else current["sticky"]),
                    shadow=mirrored,
                    # A new split overrides a running canary; other changes keep it going.
                    canary=running if running.get("state") == "RUNNING" and not split else None,
                )
            else:
                info = shown
            while wait and info["routing"].get("canary", {}).get("state") == "RUNNING":
                time.sleep(1.0)
                info = hub.model(name)
            traffic = hub.traffic(name)
    except ClientError as exc:
        _fail(exc.message)
    _show_routing(name, info, traffic, as_json)
    if wait and info["routing"].get("canary", {}).get("state") == "ROLLED_BACK":
        raise typer.Exit(1)


def _show_routing(
    name: str, info: dict[str, Any], traffic: list[dict[str, Any]], as_json: bool
) -> None:
    routing = info["routing"]
    if as_json:
        out.print_json(
            data={
                "name": name,
                "routing": routing,
                "traffic": traffic,
                "default_version": info["default_version"],
            }
        )
        return
    by_version = {t["version"]: t for t in traffic}
    total = sum(t["requests"] for t in traffic) or 1
    table = Table(title=f"{name} routing", title_justify="left")
    for column in ("version", "weight", "labels", "served", "share", "errors", "p50", "p99"):
        table.add_column(
            column, justify="left" if column in ("version", "labels") else "right", no_wrap=True
        )
    shadow = routing.get("shadow")
    if shadow:
        table.add_column("shadow", justify="right")
    for version in sorted({v["version"] for v in info["versions"]}, key=int):
        seen = by_version.get(version, {})
        requests = seen.get("requests", 0)
        weight = routing["split"].get(version)
        default = (
            " (default)" if not routing["split"] and version == info["default_version"] else ""
        )
        row = [
            version,
            f"{weight:g}" if weight is not None else "-" + default,
            ", ".join(k for k, v in routing["labels"].items() if v == version),
            str(requests),
            f"{requests / total:.1%}",
            f"{seen.get('error_rate', 0):.1%}" if requests else "-",
            f"{seen['latency']['p50_ms']:.1f} ms" if requests else "-",
            f"{seen['latency']['p99_ms']:.1f} ms" if requests else "-",
        ]
        if shadow:
            mirrored = seen.get("shadow_requests", 0)
            row.append(
                f"{mirrored}: {seen['shadow_mismatches']} differ, {seen['shadow_errors']} failed"
                if mirrored
                else ""
            )
        table.add_row(*row)
    out.print(table)
    if shadow:
        out.print(f"shadow: {shadow['fraction']:.1%} of requests mirrored to {shadow['version']}")
    rollout = routing.get("canary")
    if rollout:
        from inferencehub.cli_output import describe_canary

        out.print(describe_canary(rollout))


def _number(text: str, problem: str) -> float:
    try:
        return float(text)
    except ValueError:
        _fail(problem, 2)


def _fraction(text: str, option: str) -> float:
    """0.05 or 5% -> 0.05."""
    text = text.strip()
    value = _number(text.rstrip("%"), f"{option} takes a fraction (0.05) or a percentage (5%)")
    return value / 100 if text.endswith("%") else value


def _duration(text: str) -> float:
    """30s, 2m, 1h or plain seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            return (
                _number(text[: -len(suffix)], "--every takes a duration: 30s, 2m, 1h")
                * units[suffix]
            )
    return _number(text, "--every takes a duration: 30s, 2m, 1h")


@app.command()
def status(
    url: UrlOption = "http://127.0.0.1:8000",
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
    from inferencehub.client import ClientError, HttpClient, connect

    api_key = os.environ.get("INFERENCEHUB_API_KEY") or None
    try:  # 5 s, not 60: a hung server shows as an error line rather than a stale view
        hub = connect(url, api_key=api_key, timeout_s=5.0)
    except ValueError as exc:
        _fail(str(exc), 2)
    with hub:
        if not isinstance(hub, HttpClient):
            _fail("status needs the HTTP URL (http://host:port)", 2)
        if not (as_json or once) and out.is_terminal:
            fetch = partial(status_view.fetch_snapshot, hub, url)
            raise typer.Exit(status_live.run_live(fetch, url, out, interval, sys.stdin))
        try:
            snapshot = status_view.fetch_snapshot(hub, url)
        except ClientError as exc:
            _fail(exc.message)
    if as_json:
        out.print_json(data=snapshot)
        return
    out.print(status_view.render(snapshot, url=url, width=out.width))


def _pair(text: str, shape: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        _fail(f"expected {shape}, got {text!r}", 2)
    return key.strip(), value.strip()


keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where keys live (default: from the config).")
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Config file.")]


def _key_store(data_dir: Path | None, config: Path | None) -> Any:
    from inferencehub.keys import KeyStore

    try:
        settings = load_settings(config, {"data_dir": data_dir})
    except HubError as exc:
        _fail(exc.message, 2)
    assert settings.data_dir is not None
    # An explicit --data-dir means its keys.json, whatever file the config names.
    return KeyStore(settings.data_dir, None if data_dir else settings.gateway.api_keys_file)


@keys_app.command("create")
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
    try:
        per_s = parse_rate(rate) if rate else None
        allowed = tuple(m.strip() for m in models_.split(",") if m.strip()) if models_ else None
        secret = store.create(name, per_s, allowed)
    except HubError as exc:
        _fail(exc.message, 2)
    err.print(f"created key '{name}' in {store.path}; it is shown only now:")
    print(secret)


@keys_app.command("list")
def keys_list(
    data_dir: DataDirOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """List keys: name, rate limit, allowed models (never the secrets)."""
    store = _key_store(data_dir, config)
    try:
        keys = store.load()
    except HubError as exc:
        _fail(exc.message, 2)
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
    table = Table(title=f"API keys ({store.path})", title_justify="left")
    for column in ("name", "rate", "models"):
        table.add_column(column)
    for row in rows:
        rate_text = f"{row['rate_per_s']:g}/s" if row["rate_per_s"] else "-"
        table.add_row(row["name"], rate_text, ", ".join(row["models"] or ["all"]))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key; a running server stops accepting it within a second or two."""
    store = _key_store(data_dir, config)
    try:
        store.revoke(name)
    except HubError as exc:
        _fail(exc.message, 2)
    err.print(f"revoked key '{name}'")


@app.command("version")
def version_command() -> None:
    """Print the InferenceHub version."""
    out.print(f"inferencehub {__version__}")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
