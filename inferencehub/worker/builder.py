"""Building a model version before it may serve: sessions (or a pipeline's steps), the
require_signed check, the golden gate and the memory budget. Blocking: the registry runs it on
its pool and swaps the results in."""

from __future__ import annotations

import logging
from collections.abc import Callable

from inferencehub.bundles.installed import check_installed
from inferencehub.bundles.signing import TrustedKeys
from inferencehub.config import WorkerSettings
from inferencehub.errors import HubError, first_line
from inferencehub.runtime import usable_cores
from inferencehub.worker.golden import check_golden
from inferencehub.worker.layout import LayoutPlanner
from inferencehub.worker.memory import over_budget, release_free_memory, rss_mb
from inferencehub.worker.onnx_model import OnnxModel
from inferencehub.worker.pipeline import PipelineModel
from inferencehub.worker.providers import ProviderOptions
from inferencehub.worker.repository import ModelEntry, VersionEntry

logger = logging.getLogger(__name__)

ServedModel = OnnxModel | PipelineModel


def pool_size(settings: WorkerSettings) -> int:
    """Threads for blocking work; concurrency per model is bounded by its instances."""
    return settings.inference_threads or max(4, 2 * usable_cores())


def provider_options(settings: WorkerSettings) -> ProviderOptions:
    return ProviderOptions(
        cuda_device_id=settings.cuda_device_id,
        coreml_compute_units=settings.coreml_compute_units,
        openvino_device_type=settings.openvino_device_type,
        probe_timeout_s=settings.probe_timeout_s,
    )


class Unsigned(str):
    """Why a version may not serve under require_signed: unlike other load failures, the
    previous sessions of a reloaded version stop serving too."""


class VersionBuilder:
    """Turns version folders into models ready to serve, or into the reason they cannot."""

    def __init__(
        self,
        settings: WorkerSettings,
        layouts: LayoutPlanner,
        required_signers: TrustedKeys | None,
        step_model: Callable[[str, str], OnnxModel],
    ) -> None:
        """`step_model(name, version)`: a pipeline step's model as it serves now."""
        self._settings = settings
        self._layouts = layouts
        self._required_signers = required_signers
        self._step_model = step_model

    def build(
        self, entry: ModelEntry, versions: list[VersionEntry]
    ) -> dict[str, ServedModel | str]:
        """Version -> model, or why it failed (blocking)."""
        results: dict[str, ServedModel | str] = {}
        for v in versions:
            result = results[v.version] = self._one(entry, v)
            if not isinstance(result, str):
                logger.info("loaded %s version %s (%s)", entry.name, v.version, result.provider)
            else:
                logger.error(
                    "model %s version %s failed to load: %s", entry.name, v.version, result
                )
        return results

    def _one(self, entry: ModelEntry, v: VersionEntry) -> ServedModel | str:
        if entry.error is not None:
            return entry.error
        if entry.config.pipeline is None and not v.path.is_file():
            return f"{v.path} does not exist"
        if self._required_signers is not None and (
            why := check_installed(entry.directory, v.version, self._required_signers)
        ):
            return Unsigned(f"require_signed: {why}")
        before_mb = rss_mb()
        try:
            model = self._open(entry, v)
            # The gate before traffic: a version whose golden outputs do not match never
            # serves (a reload keeps the previous file); every session is warmed.
            refused = check_golden(model, v.path.parent, entry.config.golden)
            release_free_memory()  # what loading, tuning and warm-up left behind
            refused = refused or over_budget(self._settings.max_memory_mb, before_mb)
            if refused is None:
                return model
            del model  # its sessions go now, not when the next version loads
            release_free_memory()
            return refused
        except HubError as exc:
            return exc.message
        except Exception as exc:  # ORT raises many types for broken files
            return f"cannot load {v.path.name}: {first_line(exc)}"

    def _open(self, entry: ModelEntry, v: VersionEntry) -> ServedModel:
        settings = self._settings
        if entry.config.pipeline is not None:
            return PipelineModel(
                entry.name,
                v.version,
                v.path.parent,
                entry.config,
                self._step_model,
                settings.max_image_pixels,
            )
        return OnnxModel(
            entry.name,
            v.version,
            v.path,
            entry.config,
            entry.labels,
            layout=self._layouts.plan(entry.config, v.path),
            max_image_pixels=settings.max_image_pixels,
            provider=settings.provider,
            provider_policy=settings.provider_policy,
            provider_options=provider_options(settings),
        )
