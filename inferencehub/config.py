"""Settings for every role: defaults < config file (inferencehub.toml) < command-line flags."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from inferencehub.errors import ConfigError
from inferencehub.runtime import default_data_dir, default_models_dir, usable_cores

DEFAULT_CONFIG_FILE = "inferencehub.toml"

LogFormat = Literal["text", "json"]
ProviderChoice = Literal[
    "auto", "measure", "tensorrt", "cuda", "coreml", "directml", "openvino", "cpu"
]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]


def _arena_size(size: int) -> int:
    if 0 < size < 1 << 20:
        raise ValueError("must be 0 (no arena) or at least 1048576 (1 MiB)")
    return size


def _distinct(cpus: list[int]) -> list[int]:
    if len(set(cpus)) != len(cpus):
        raise ValueError("each CPU may be listed once")
    return sorted(cpus)


# CPU cores to pin a worker to, e.g. [0, 1].
CpuList = Annotated[
    list[Annotated[int, Field(ge=0)]], Field(min_length=1), AfterValidator(_distinct)
]
# Settings holding paths: relative ones in a config file are relative to that file.
_PATH_KEYS = (
    ("worker", "models_dir"),
    ("supervisor", "runtime_dir"),
    (None, "data_dir"),
    ("gateway", "tls_cert"),
    ("gateway", "tls_key"),
    ("gateway", "api_keys_file"),
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RemoteWorker(_Section):
    """A worker on another machine (`inferencehub worker --listen`), reached with mutual TLS."""

    address: str = Field(description="host:port of the worker.")
    ca_cert: Path = Field(description="PEM CA that signed the worker's certificate.")
    client_cert: Path = Field(description="PEM certificate the gateway presents.")
    client_key: Path = Field(description="PEM private key of client_cert.")
    server_name: str | None = Field(
        None, description="Name to check in the worker's certificate (default: the host)."
    )


class GatewaySettings(_Section):
    """The door: public ports and how it talks to the worker."""

    host: str = Field("127.0.0.1", description="Address to bind the public ports to.")
    http_port: int = Field(8000, ge=0, le=65535, description="KServe v2 + /v1 HTTP port.")
    grpc_port: int = Field(8001, ge=0, le=65535, description="Public gRPC port.")
    request_timeout_s: float = Field(
        60.0, gt=0, description="Deadline of a predict call when the client sets none."
    )
    metadata_refresh_s: float = Field(
        1.0, gt=0, description="How often the gateway re-reads model signatures from the worker."
    )
    max_request_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest request body or message accepted."
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="Time to finish in-flight requests on stop."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS and gRPC+TLS.")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")
    insecure: bool = Field(
        False, description="Allow a non-loopback host with no API keys (anyone may call)."
    )
    api_keys_file: Path | None = Field(
        None,
        description="keys.json to read API keys from (default: <data_dir>/keys.json), e.g. "
        "mounted from a Kubernetes Secret.",
    )
    rate_limit_per_s: float = Field(
        0.0, ge=0, description="Requests a second for the whole gateway (0: no limit)."
    )
    max_in_flight: int = Field(
        1024, ge=1, description="Requests being served at once; beyond, 503 at once."
    )
    remote_workers: list[RemoteWorker] = Field(
        default_factory=list, description="Workers on other machines, beside the local ones."
    )
    retry_in_flight: bool = Field(
        True,
        description="Send a request once more if the worker died while computing it "
        "(inference is idempotent), within the request's deadline.",
    )
    shm_max_regions: int = Field(
        64, ge=0, description="System shared-memory regions one API key may register."
    )
    shm_max_bytes: int = Field(
        16 << 30, ge=0, description="Bytes of system shared memory one API key may register."
    )
    arena_bytes: Annotated[int, AfterValidator(_arena_size)] = Field(
        128 * 1024 * 1024,
        ge=0,
        description="Shared memory per local worker that tensors cross the hop in, instead of "
        "inside the gRPC messages (0: no arena; pages are used only as requests need them).",
    )


class WorkerSettings(_Section):
    """The kitchen: where models live and how inference is run."""

    models_dir: Path = Field(
        default_factory=default_models_dir,
        description="Model repository to serve (a binary with no ./models: the one beside it).",
    )
    inference_threads: int = Field(
        0, ge=0, description="Threads for inference and image decoding (0: 2 x cores, >= 4)."
    )
    intra_op_threads: int = Field(
        0, ge=0, description="ONNX Runtime threads per session (0: tuned, or cores / instances)."
    )
    tuning_budget_s: float = Field(
        3.0,
        gt=0,
        le=120,
        description="Wall time a CPU model version may spend measuring its layout when it "
        "loads (model.toml tuning = auto); the result is cached in <data_dir>/tuning.",
    )
    max_memory_mb: int = Field(
        0,
        ge=0,
        description="Memory (RSS) this worker may hold: a model version whose load takes it "
        "over fails to load with the reason, and the others keep serving (0: no limit).",
    )
    repository_poll_s: float = Field(
        2.0, ge=0, description="How often to look for model changes (0: never; load explicitly)."
    )
    max_image_pixels: int = Field(
        50_000_000, gt=0, description="Larger images are refused (decompression-bomb guard)."
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="Time to finish in-flight inference on stop."
    )
    provider: ProviderChoice = Field(
        "auto",
        description="Execution provider: auto (best available that works), measure (the fastest "
        "on each model), or tensorrt, cuda, coreml, directml, openvino, cpu.",
    )
    provider_policy: Literal["fallback", "strict"] = Field(
        "fallback",
        description="When the named provider cannot run a model: fallback to the next (logged) "
        "or strict (the version fails to load).",
    )
    cpus: CpuList | None = Field(
        None,
        description="CPU cores the worker runs on (Linux; default: any). Threads default to "
        "their number.",
    )
    cuda_device_id: int = Field(0, ge=0, description="GPU for CUDA and TensorRT.")
    coreml_compute_units: Literal["ALL", "CPUAndGPU", "CPUAndNeuralEngine", "CPUOnly"] = Field(
        "ALL", description="Where CoreML may run models."
    )
    openvino_device_type: str = Field("CPU", description="OpenVINO device, e.g. CPU, GPU, NPU.")
    probe_timeout_s: float = Field(
        60.0, gt=0, description="How long a GPU provider's trial run in a subprocess may take."
    )


class RepositorySettings(_Section):
    """Where models may come from: signed bundles (docs/bundles.md) and who is trusted."""

    trusted_keys: list[Path] = Field(
        default_factory=list,
        description="Ed25519 public keys (PEM) whose bundles are imported (`up --trust`).",
    )
    require_signed: bool = Field(
        False,
        description="Serve only versions that arrived in a bundle signed by a trusted key and "
        "still match its manifest; any other version is FAILED with the reason.",
    )
    max_bundle_bytes: int = Field(
        4 << 30, gt=0, description="Largest bundle accepted for import, packed or unpacked."
    )
    import_timeout_s: float = Field(
        600.0, gt=0, description="How long an import may take (upload, checks, golden gate)."
    )


class WorkerPlacement(_Section):
    """One local worker process: which models it loads and on what."""

    models: list[str] | None = Field(None, description="Model names (default: every model).")
    cuda_device_id: int | None = Field(None, ge=0, description="GPU of this worker.")
    cpus: CpuList | None = Field(
        None, description="CPU cores of this worker (Linux): keeps it off the others' cores."
    )
    intra_op_threads: int | None = Field(None, ge=0, description="ORT threads per session.")
    provider: ProviderChoice | None = Field(None, description="Execution provider.")


class SupervisorSettings(_Section):
    """Process lifecycle."""

    workers: int = Field(
        1,
        ge=0,
        le=64,
        description="Local worker processes, each with every model (0: remote only).",
    )
    placement: list[WorkerPlacement] = Field(
        default_factory=list,
        description="One local worker per entry, with its models (replaces `workers`).",
    )

    runtime_dir: Path | None = Field(
        None, description="Private directory for the worker socket (default: a fresh temp dir)."
    )
    start_timeout_s: float = Field(
        120.0, gt=0, description="How long a child may take to become ready."
    )
    stop_timeout_s: float = Field(
        15.0, gt=0, description="How long a child may take to stop before it is killed."
    )


class Settings(_Section):
    """Everything `inferencehub up` and its children need; travels to children as a 0600 file."""

    log_level: LogLevel = Field("INFO", description="Logging level of every process.")
    data_dir: Path | None = Field(
        None, description="Where API keys live (default: $XDG_DATA_HOME/inferencehub)."
    )
    log_format: LogFormat = Field("text", description="Log line format.")
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        "auto", description="Event loop of the gateway and worker (auto: uvloop if installed)."
    )
    gateway: GatewaySettings = GatewaySettings()
    worker: WorkerSettings = WorkerSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    repository: RepositorySettings = RepositorySettings()

    def worker_placements(self) -> list[WorkerPlacement]:
        """The local workers to start: the explicit placement, else `workers` identical ones."""
        return list(self.supervisor.placement) or [
            WorkerPlacement() for _ in range(self.supervisor.workers)
        ]

    def for_worker(self, placement: WorkerPlacement, local_workers: int = 1) -> Settings:
        """These settings with one worker's placement applied. With several local workers and
        no thread count set, each gets its share of the cores, so they do not oversubscribe."""
        overrides: dict[str, Any] = {
            key: value
            for key in ("cuda_device_id", "cpus", "intra_op_threads", "provider")
            if (value := getattr(placement, key)) is not None
        }
        pinned = "cpus" in overrides  # its threads then default to its own cores (registry.py)
        if local_workers > 1 and "intra_op_threads" not in overrides and not pinned:
            if not self.worker.intra_op_threads:
                overrides["intra_op_threads"] = max(1, usable_cores() // local_workers)
        return self.model_copy(update={"worker": self.worker.model_copy(update=overrides)})

    def to_child_file(self, path: Path) -> None:
        """Write settings for a child process, readable by this user only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.model_dump_json())

    @classmethod
    def from_child_file(cls, path: Path) -> Settings:
        return cls.model_validate_json(path.read_text())


def _set_nested(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Merge defaults, the config file and flag overrides (dotted keys, None = not given).

    Without `config_file`, ./inferencehub.toml is read if it exists. Relative paths in the
    file are resolved against the file's directory; paths from flags against the cwd.

    Raises:
        ConfigError: the file is missing, is not TOML, or holds unknown or invalid keys.
    """
    data: dict[str, Any] = {}
    if config_file is None and Path(DEFAULT_CONFIG_FILE).is_file():
        config_file = Path(DEFAULT_CONFIG_FILE)
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        base = config_file.resolve().parent
        for section, key in _PATH_KEYS:
            table = data if section is None else data.get(section, {})
            if isinstance(table.get(key), str):
                table[key] = str(base / table[key])
        repository = data.get("repository", {})
        if isinstance(repository.get("trusted_keys"), list):
            repository["trusted_keys"] = [
                str(base / key) if isinstance(key, str) else key
                for key in repository["trusted_keys"]
            ]
        for remote in data.get("gateway", {}).get("remote_workers", []):
            for key in ("ca_cert", "client_cert", "client_key"):
                if isinstance(remote, dict) and isinstance(remote.get(key), str):
                    remote[key] = str(base / remote[key])
    for key, value in (overrides or {}).items():
        if key == "repository.trusted_keys" and value:  # `up --trust` adds to the file's keys
            value = [*data.get("repository", {}).get("trusted_keys", []), *value]
        if value is not None:
            _set_nested(data, key, value)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    worker = settings.worker.model_copy(update={"models_dir": settings.worker.models_dir.resolve()})
    data_dir = (settings.data_dir or default_data_dir()).resolve()
    tls = (settings.gateway.tls_cert, settings.gateway.tls_key)
    if (tls[0] is None) != (tls[1] is None):
        raise ConfigError("TLS needs both tls_cert and tls_key")
    for path in tls:
        if path is not None and not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist")
    for key in settings.repository.trusted_keys:
        if not key.is_file():
            raise ConfigError(f"trusted key {key} does not exist (expected a PEM public key)")
    if settings.repository.require_signed and not settings.repository.trusted_keys:
        raise ConfigError(
            "require_signed needs at least one trusted key ([repository] trusted_keys or "
            "`up --trust PUB`): with none, no model could ever serve"
        )
    return settings.model_copy(update={"worker": worker, "data_dir": data_dir})
