"""Every model version the worker serves, loaded or failed, and the pool that runs them."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inferencehub.bundles.signing import TrustedKeys
from inferencehub.config import WorkerSettings
from inferencehub.errors import (
    ConfigError,
    ModelNotFoundError,
    PolicyChangedError,
)
from inferencehub.protocol import routing
from inferencehub.protocol.routing import resolve_version, version_order
from inferencehub.protocol.validation import missing_model_error
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.builder import Unsigned, VersionBuilder, pool_size
from inferencehub.worker.layout import LayoutPlanner
from inferencehub.worker.memory import release_free_memory
from inferencehub.worker.onnx_model import OnnxModel
from inferencehub.worker.repository import (
    ModelEntry,
    RoutingConfig,
    scan_model,
    scan_repository,
)
from inferencehub.worker.routing import RoutingStore, adopted, default_version, policy_from, usable
from inferencehub.worker.scheduler import ModelScheduler

logger = logging.getLogger(__name__)


class ModelRegistry:
    """Loads the repository into ONNX Runtime sessions and answers lookups by name/version."""

    def __init__(
        self,
        root: Path,
        settings: WorkerSettings,
        routing_dir: Path | None = None,
        only: frozenset[str] | None = None,
        tuning_dir: Path | None = None,
        required_signers: TrustedKeys | None = None,
    ) -> None:
        """`tuning_dir`: where measured layouts are cached (None: measured at every load);
        `required_signers`: serve only versions whose kept bundle manifest one of these keys
        signed and whose files still match it (None: any version)."""
        self._root = root
        self._builder = VersionBuilder(
            settings, LayoutPlanner(settings, tuning_dir), required_signers, self._step_model
        )
        self._only = only  # this worker's placement: the models it hosts (None: all)
        self._routing = RoutingStore(routing_dir)
        self._settings = settings
        self._executor = ThreadPoolExecutor(
            max_workers=pool_size(settings), thread_name_prefix="inference"
        )
        self._models: dict[str, dict[str, ModelScheduler]] = {}
        self._infos: dict[str, pb.ModelInfo] = {}
        self._loading = asyncio.Lock()  # one (re)load at a time; lookups never wait for it
        self.reloading: set[str] = set()  # models with a (re)load queued or running

    async def load_all(self) -> None:
        """Load every version; a broken one is recorded as FAILED and the rest still serve.

        Raises:
            ConfigError: the repository directory does not exist.
        """
        entries = [e for e in scan_repository(self._root) if self.hosts(e.name)]
        if not entries:
            logger.warning("no models found in %s", self._root)
        # Pipelines last: their steps' models must be serving when they are checked.
        for entry in sorted(entries, key=lambda e: e.config.pipeline is not None):
            await self._load(entry)

    async def load_model(self, name: str) -> pb.ModelInfo:
        """(Re)load one model from the repository; requests in flight finish on the old sessions.

        Raises:
            ModelNotFoundError: the repository has no such model folder.
        """
        if not self.hosts(name):
            raise ModelNotFoundError(
                f"this worker does not host model '{name}'; it hosts: "
                f"{', '.join(sorted(self._only or ()))}"
            )
        entry = scan_model(self._root / name) if "/" not in name else None
        if entry is None:
            raise ModelNotFoundError(
                f"the repository has no model '{name}' (expected {self._root}/{name}/<version>/"
                "model.onnx)"
            )
        await self._load(entry)
        return self._infos[name]

    async def unload_model(self, name: str) -> pb.ModelInfo:
        """Drop a model's sessions; it stays listed as UNLOADED.

        Raises:
            ModelNotFoundError: no such model is known.
        """
        async with self._loading:
            info = self.model_info(name)
            for scheduler in self._models.pop(name, {}).values():
                await scheduler.close()
            unloaded = pb.ModelInfo(name=name, default_version=info.default_version)
            for version in info.versions:
                unloaded.versions.append(
                    pb.ModelVersion(
                        version=version.version, state=pb.ModelVersion.UNLOADED, error="unloaded"
                    )
                )
            self._infos[name] = unloaded
        logger.info("unloaded %s", name)
        return unloaded

    async def _load(self, entry: ModelEntry, only: set[str] | None = None) -> None:
        """(Re)load a model's versions (`only` these, plus new ones; None = all), then hand
        back the memory the replaced sessions held: only once _swap's frame is gone are they
        freed (a reload that trimmed before kept ~45 MB of SqueezeNet's old sessions)."""
        self.reloading.add(entry.name)
        try:
            await self._swap(entry, only)
        finally:
            self.reloading.discard(entry.name)
        gc.collect()
        release_free_memory()

    async def trial_load(self, entry: ModelEntry, versions: list[str]) -> dict[str, str]:
        """Build `versions` of a model folder outside the repository (an import's staging copy)
        through the same gate as a load, then drop them: version -> why it cannot serve."""
        targets = [v for v in entry.versions if v.version in versions]
        loop = asyncio.get_running_loop()
        built = await loop.run_in_executor(self._executor, self._builder.build, entry, targets)
        refused = {v: result for v, result in built.items() if isinstance(result, str)}
        del built
        gc.collect()
        release_free_memory()
        return refused

    async def _swap(self, entry: ModelEntry, only: set[str] | None) -> None:
        """Build the versions to (re)load and put them in place of the old ones.

        A version that fails to reload keeps serving its previous file, with the failure in its
        metadata; versions whose folders are gone are drained and dropped; the new set replaces
        the old in one step on the loop, so lookups never see a half-loaded model.
        """
        async with self._loading:
            old = self._models.get(entry.name, {})
            old_info = {v.version: v for v in self._infos.get(entry.name, pb.ModelInfo()).versions}
            targets = [
                v
                for v in entry.versions
                if only is None or v.version in only or v.version not in old_info
            ]
            # NOTE: session construction holds the GIL; running it off the loop keeps health
            # probes answered while large models load.
            loop = asyncio.get_running_loop()
            loaded = await loop.run_in_executor(self._executor, self._builder.build, entry, targets)
            info = pb.ModelInfo(name=entry.name)
            schedulers: dict[str, ModelScheduler] = {}
            retired = [s for v, s in old.items() if v not in {e.version for e in entry.versions}]
            for v in entry.versions:
                result = loaded.get(v.version)
                previous = old.get(v.version)
                if result is None:  # untouched
                    if previous is not None:
                        schedulers[v.version] = previous
                    info.versions.append(old_info[v.version])
                elif not isinstance(result, str):
                    schedulers[v.version] = ModelScheduler(result, self._executor)
                    info.versions.append(result.info)
                    if previous is not None:
                        retired.append(previous)
                elif previous is not None and not isinstance(result, Unsigned):
                    schedulers[v.version] = previous
                    kept = pb.ModelVersion()
                    kept.CopyFrom(previous.model.info)
                    kept.error = f"reload failed, still serving the previous file: {result}"
                    info.versions.append(kept)
                else:
                    if previous is not None:
                        retired.append(previous)  # its files no longer match what was signed
                    info.versions.append(
                        pb.ModelVersion(
                            version=v.version, state=pb.ModelVersion.FAILED, error=result
                        )
                    )
            info.default_version = default_version(entry, info)
            info.routing.CopyFrom(self._routing.live(entry, info))
            self._models[entry.name] = schedulers
            self._infos[entry.name] = info
            for scheduler in retired:
                await scheduler.close()  # requests queued on the old sessions still finish

    def hosts(self, name: str) -> bool:
        return self._only is None or name in self._only

    async def reload(self, entry: ModelEntry, versions: set[str] | None) -> None:
        """Apply a repository change: reload `versions` (None = all), load new ones, drop gone."""
        if self.hosts(entry.name):
            await self._load(entry, versions)

    async def set_routing(self, request: pb.SetRoutingRequest) -> pb.ModelInfo:
        """Replace (reset: back to model.toml) a model's routing, live and persisted.

        A policy with a new canary (state unspecified) starts a rollout from the current policy:
        its labels, shadow and stickiness stay, the ramp sets the weights.

        Raises:
            ModelNotFoundError: unknown model.
            InvalidRequestError: the policy names versions that cannot serve, or has no weight.
            PolicyChangedError: `if_canary_updated_ms` no longer matches the running canary.
        """
        async with self._loading:
            info = self.model_info(request.name)
            expected = request.if_canary_updated_ms
            if expected and info.routing.canary.updated_ms != expected:
                raise PolicyChangedError(
                    f"the routing of '{request.name}' changed meanwhile; not applied"
                )
            if request.reset:
                self._routing.forget(request.name)
                entry = scan_model(self._root / request.name)
                config = entry.config.routing if entry is not None else RoutingConfig()
                policy = usable(policy_from(config), info)
            else:
                policy = routing.prepare(info, request.routing, int(time.time() * 1000))
                self._routing.save(request.name, policy)
            return self._adopt(info, policy)

    @property
    def routing_dir(self) -> Path | None:
        return self._routing.directory

    async def follow_saved_routing(self, name: str) -> None:
        """Adopt a routing file another worker sharing this data dir wrote (or removed): pods
        behind one Service name then agree on a model's routing within a poll."""
        async with self._loading:
            info = self._infos.get(name)
            entry = scan_model(self._root / name) if info is not None else None
            if info is None or entry is None:
                return
            policy = self._routing.live(entry, info)
            if policy != info.routing:  # else our own write, or no change to the policy
                self._adopt(info, policy, f" (changed in {self._routing.directory})")

    def _adopt(self, info: pb.ModelInfo, policy: pb.RoutingPolicy, why: str = "") -> pb.ModelInfo:
        """Serve the model with this routing from now on (the caller holds the lock)."""
        updated = self._infos[info.name] = adopted(info, policy, why)
        return updated

    async def forget_model(self, name: str) -> None:
        """The model's folder is gone: drain and drop it from the listing."""
        async with self._loading:
            for scheduler in self._models.pop(name, {}).values():
                await scheduler.close()
            self._infos.pop(name, None)
        logger.info("removed %s (its folder is gone)", name)

    def _step_model(self, name: str, version: str) -> OnnxModel:
        """A pipeline step's model as it serves now.

        Raises:
            ModelNotFoundError, ModelNotReadyError: no such model or version, or not serving.
            ConfigError: it is a pipeline itself.
        """
        model = self.get(name, version).model
        if not isinstance(model, OnnxModel):
            raise ConfigError(f"model '{name}' is a pipeline; a step runs a model")
        return model

    def list_models(self) -> list[pb.ModelInfo]:
        return [self._infos[name] for name in sorted(self._infos)]

    def model_info(self, name: str) -> pb.ModelInfo:
        """Raises ModelNotFoundError naming the models that exist."""
        info = self._infos.get(name)
        if info is None:
            raise missing_model_error(name, list(self._infos))
        return info

    def get(self, name: str, version: str) -> ModelScheduler:
        """The scheduler of the loaded model for a name and version ("" = default).

        Raises:
            ModelNotFoundError: unknown model or version.
            ModelNotReadyError: the version failed to load.
        """
        scheduler = self._models.get(name, {}).get(version)
        if scheduler is not None and not self._infos[name].routing.labels:
            return scheduler  # the gateway pins a loaded version: the common case, one lookup
        resolved = resolve_version(self.model_info(name), version)
        return self._models[name][resolved.version]

    def statistics(self, name: str, version: str) -> list[pb.VersionStatistics]:
        """Statistics of loaded versions ("" = all models / all versions).

        Raises:
            ModelNotFoundError: unknown model or version.
        """
        if not name:
            return [
                _statistics(scheduler, n, v)
                for n in sorted(self._models)
                for v, scheduler in sorted(self._models[n].items(), key=lambda i: int(i[0]))
            ]
        if version:
            return [_statistics(self.get(name, version), name, version)]
        self.model_info(name)
        loaded = self._models.get(name, {})
        return [_statistics(loaded[v], name, v) for v in sorted(loaded, key=version_order)]

    async def close(self) -> None:
        """Finish queued requests, then stop the pool."""
        for schedulers in self._models.values():
            for scheduler in schedulers.values():
                await scheduler.close()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _statistics(scheduler: ModelScheduler, name: str, version: str) -> pb.VersionStatistics:
    stats = scheduler.model.stats.to_proto(name, version)
    stats.queue_depth = scheduler.queue_depth
    return stats
