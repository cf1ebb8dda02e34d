"""The gateway process: HTTP (uvicorn) and gRPC on one event loop, a client of the worker."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import uvicorn
from grpc_health.v1 import health, health_pb2

from inferencehub.config import Settings
from inferencehub.errors import ConfigError
from inferencehub.gateway.auth import Authenticator
from inferencehub.gateway.canary_controller import CanaryController
from inferencehub.gateway.dataplane import DataPlane
from inferencehub.gateway.grpc_server import build_grpc_server
from inferencehub.gateway.observe import Observer
from inferencehub.gateway.pool import WorkerPool
from inferencehub.gateway.request_metrics import RequestMetrics, metrics_registry
from inferencehub.gateway.rest import create_app
from inferencehub.gateway.shared_memory import RegionRegistry
from inferencehub.gateway.worker_client import GrpcWorkerClient
from inferencehub.keys import KeyStore
from inferencehub.runtime import notify

logger = logging.getLogger(__name__)

# Room for protobuf framing around a request body of max_request_bytes.
MESSAGE_OVERHEAD_BYTES = 65536
HEALTH_POLL_S = 1.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def bind_http_socket(host: str, port: int) -> socket.socket:
    """Bind the HTTP port ourselves: a busy port is reported clearly and port 0 is read back.

    Raises:
        ConfigError: the address cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # listening now, so a gRPC bind to the same port fails loudly
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"HTTP port {port} on {host} is already in use") from None
        raise ConfigError(f"cannot bind HTTP to {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _grpc_target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def worker_clients(
    settings: Settings, local: Sequence[str], max_message: int
) -> list[GrpcWorkerClient]:
    """Clients of the local workers (Unix sockets) and the remote ones (mutual TLS).

    With one worker a request in flight when it dies waits for its restart; with several it
    moves to another worker at once (the pool's failover), so `retry_in_flight` is theirs.

    Raises:
        ValueError: no worker at all, or a remote worker's certificate files cannot be read.
    """
    s = settings.gateway
    count = len(local) + len(s.remote_workers)
    common = {"max_message_bytes": max_message, "refresh_s": s.metadata_refresh_s}
    clients = [
        GrpcWorkerClient(
            address,
            name=Path(address.removeprefix("unix://")).stem,  # worker, worker-0, ...
            retry_in_flight=s.retry_in_flight and count == 1,
            arena_bytes=s.arena_bytes,
            **common,
        )
        for address in local
    ]
    for remote in s.remote_workers:
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=remote.ca_cert.read_bytes(),
                private_key=remote.client_key.read_bytes(),
                certificate_chain=remote.client_cert.read_bytes(),
            )
        except OSError as exc:
            raise ValueError(
                f"remote worker {remote.address}: cannot read {exc.filename}: {exc.strerror}"
            ) from None
        clients.append(
            GrpcWorkerClient(
                remote.address,
                name=remote.address,
                retry_in_flight=s.retry_in_flight and count == 1,
                credentials=credentials,
                server_name=remote.server_name,
                **common,
            )
        )
    if not clients:
        raise ValueError("no workers: supervisor.workers is 0 and gateway.remote_workers is empty")
    return clients


async def run_gateway(
    settings: Settings,
    stop: asyncio.Event,
    *,
    worker_addresses: Sequence[str],
    notify_fd: int | None = None,
    state_file: Path | None = None,
) -> None:
    """Serve the public APIs until `stop` is set, then drain in-flight requests.

    Raises:
        ConfigError: a public port cannot be bound, or a remote worker's TLS files unreadable.
    """
    s = settings.gateway
    max_message = s.max_request_bytes + MESSAGE_OVERHEAD_BYTES
    try:
        worker = WorkerPool(worker_clients(settings, worker_addresses, max_message))
    except ValueError as exc:
        notify(notify_fd, "error", message=str(exc))
        raise ConfigError(str(exc)) from None
    regions = RegionRegistry(s.shm_max_regions, s.shm_max_bytes, s.max_request_bytes)
    registry = metrics_registry()
    dataplane = DataPlane(
        worker,
        s.request_timeout_s,
        s.max_in_flight,
        regions,
        RequestMetrics(registry),
        settings.repository.import_timeout_s,
    )
    health_servicer = health.aio.HealthServicer()
    authenticator = Authenticator(
        KeyStore(settings.data_dir, s.api_keys_file) if settings.data_dir else None,
        s.rate_limit_per_s,
    )
    grpc_server = build_grpc_server(dataplane, health_servicer, max_message, authenticator)
    try:
        http_socket = bind_http_socket(s.host, s.http_port)
        try:
            target = _grpc_target(s.host, s.grpc_port)
            if s.tls_cert is not None and s.tls_key is not None:
                credentials = grpc.ssl_server_credentials(
                    [(s.tls_key.read_bytes(), s.tls_cert.read_bytes())]
                )
                grpc_port = grpc_server.add_secure_port(target, credentials)
            else:
                grpc_port = grpc_server.add_insecure_port(target)
        except RuntimeError:
            http_socket.close()
            raise ConfigError(f"gRPC port {s.grpc_port} on {s.host} is already in use") from None
    except ConfigError as exc:
        notify(notify_fd, "error", message=exc.message)
        await worker.close()
        raise
    http_port = http_socket.getsockname()[1]
    http = _HttpServer(
        uvicorn.Config(
            create_app(
                dataplane,
                s.max_request_bytes,
                Observer(dataplane, registry, authenticator, state_file),
                authenticator,
                settings.repository.max_bundle_bytes,
            ),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=math.ceil(s.shutdown_grace_s),
            ssl_certfile=s.tls_cert,
            ssl_keyfile=s.tls_key,
        )
    )
    await health_servicer.set("", NOT_SERVING)
    canary_controller = CanaryController(worker, dataplane.traffic_stats)
    worker.routing_listeners.append(canary_controller.observe)
    await worker.start()
    await grpc_server.start()
    stopper = asyncio.create_task(_stop_when_set(stop, http, grpc_server, s.shutdown_grace_s))
    helpers = [
        asyncio.create_task(_announce_when_started(http, notify_fd, http_port, grpc_port)),
        asyncio.create_task(_mirror_worker_health(worker, health_servicer)),
        asyncio.create_task(canary_controller.run()),
        asyncio.create_task(dataplane.traffic_stats.follow()),
    ]
    logger.info("gateway on http://%s:%d and grpc %s:%d", s.host, http_port, s.host, grpc_port)
    try:
        await http.serve(sockets=[http_socket])  # returns once should_exit is set and drained
    finally:
        stop.set()  # serve() can also end on its own; gRPC must drain either way
        await stopper
        for task in helpers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await dataplane.close()
        await worker.close()
        http_socket.close()
        logger.info("gateway stopped")


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal capture: run_role's one stop event drives HTTP and gRPC."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _stop_when_set(
    stop: asyncio.Event, http: uvicorn.Server, grpc_server: grpc.aio.Server, grace_s: float
) -> None:
    """Stop accepting on both ports at once; each drains its in-flight requests within grace."""
    await stop.wait()
    http.should_exit = True
    await grpc_server.stop(grace=grace_s)


async def _mirror_worker_health(
    worker: WorkerPool, health_servicer: health.aio.HealthServicer
) -> None:
    """Follow the worker's health: /v2/health/ready and public gRPC health answer from it."""
    while True:
        serving = await worker.check_health()
        await health_servicer.set("", SERVING if serving else NOT_SERVING)
        await asyncio.sleep(HEALTH_POLL_S)


async def _announce_when_started(
    http: uvicorn.Server, notify_fd: int | None, http_port: int, grpc_port: int
) -> None:
    # uvicorn offers no "started" event; it listens only after startup, so poll its flag.
    while not http.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    notify(notify_fd, "ready", http_port=http_port, grpc_port=grpc_port)
