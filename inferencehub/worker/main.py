"""The worker process: a grpc.aio server on the private Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from inferencehub.bundles.signing import load_trusted
from inferencehub.config import Settings
from inferencehub.errors import ConfigError, HubError
from inferencehub.runtime import notify, pin_to_cpus, usable_cores
from inferencehub.v1 import hop_pb2_grpc, inference_pb2_grpc
from inferencehub.worker.hop import HopServicer
from inferencehub.worker.importer import ModelImporter
from inferencehub.worker.memory import limit_malloc_arenas
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.servicer import WorkerServicer
from inferencehub.worker.watcher import RepositoryWatcher

logger = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def message_options(max_bytes: int) -> list[tuple[str, int]]:
    """gRPC's 4 MiB default is far too small for image batches."""
    return [
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", max_bytes),
    ]


@dataclass(frozen=True)
class ServerTLS:
    """A listening worker's mutual TLS: its certificate, and the CA its gateways' come from."""

    cert: bytes
    key: bytes
    client_ca: bytes

    @classmethod
    def read(cls, cert: Path, key: Path, client_ca: Path) -> ServerTLS:
        """Raises ConfigError naming the file that cannot be read."""
        try:
            return cls(cert.read_bytes(), key.read_bytes(), client_ca.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.client_ca, require_client_auth=True
        )


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    address: str,
    notify_fd: int | None = None,
    tls: ServerTLS | None = None,
    only: frozenset[str] | None = None,
) -> None:
    """Serve models on `address` until `stop` is set: unix://... for `up`'s own workers, or
    host:port with mutual TLS for a remote gateway. `only`: the models this worker hosts.

    Raises:
        HubError: the model repository cannot be read or the address cannot be bound.
    """
    limit_malloc_arenas(max(2, usable_cores()))  # before ORT and gRPC start their threads
    if settings.worker.cpus:
        try:
            pin_to_cpus(settings.worker.cpus)  # before ORT and gRPC start their threads
        except HubError as exc:
            notify(notify_fd, "error", message=exc.message)
            raise
        logger.info("worker pinned to CPUs %s", ", ".join(map(str, settings.worker.cpus)))
    routing_dir = settings.data_dir / "routing" if settings.data_dir else None
    tuning_dir = settings.data_dir / "tuning" if settings.data_dir else None
    try:
        trusted = load_trusted(settings.repository.trusted_keys)
    except HubError as exc:
        notify(notify_fd, "error", message=exc.message)
        raise
    required = trusted if settings.repository.require_signed else None
    registry = ModelRegistry(
        settings.worker.models_dir, settings.worker, routing_dir, only, tuning_dir, required
    )
    watchers: list[RepositoryWatcher] = []  # the watcher starts once the models are loaded

    def installed(name: str) -> None:
        for follow in watchers:
            follow.acknowledge(name)

    importer = ModelImporter(
        registry, settings.worker.models_dir, settings.repository, trusted, installed
    )
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", NOT_SERVING)  # it starts SERVING; we are not, yet
    hop_servicer = HopServicer(
        registry, lambda: servicer.ready, allow_arena=address.startswith("unix://")
    )
    servicer = WorkerServicer(registry, hop_servicer.counts, importer)
    server = grpc.aio.server(options=message_options(settings.gateway.max_request_bytes + 65536))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server)
    hop_pb2_grpc.add_WorkerHopServicer_to_server(hop_servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if tls is not None:
            server.add_secure_port(address, tls.credentials())
        else:
            server.add_insecure_port(address)
        await server.start()
        if address.startswith("unix://"):
            # Only this user may connect: nobody bypasses the gateway's door locally.
            os.chmod(address.removeprefix("unix://"), 0o600)
        await registry.load_all()
    except HubError as exc:
        notify(notify_fd, "error", message=exc.message)
        await server.stop(grace=None)
        await registry.close()
        raise
    except RuntimeError as exc:  # grpc: "Failed to bind"
        notify(notify_fd, "error", message=f"cannot listen on {address}: {exc}")
        await registry.close()
        raise ConfigError(f"cannot listen on {address}: {exc}") from None
    watcher = None
    if settings.worker.repository_poll_s > 0:
        follow = RepositoryWatcher(
            registry, settings.worker.models_dir, settings.worker.repository_poll_s
        )
        watchers.append(follow)
        watcher = asyncio.create_task(follow.run(), name="repository-watcher")
    try:
        servicer.ready = True
        await health_servicer.set("", SERVING)
        models = registry.list_models()
        logger.info("worker serving %d model(s) on %s", len(models), address)
        notify(notify_fd, "ready", address=address)
        await stop.wait()
    finally:
        logger.info("worker stopping")
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await health_servicer.enter_graceful_shutdown()
        await hop_servicer.drain(settings.worker.shutdown_grace_s)
        await server.stop(grace=settings.worker.shutdown_grace_s)
        await registry.close()
