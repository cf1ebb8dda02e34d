"""Which layout a version loads with: what model.toml and the settings fix, a cached
measurement, or a new one (tuning.py), and the cache that keeps measurements across starts."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import asdict
from pathlib import Path

import onnxruntime as ort

from inferencehub.config import WorkerSettings
from inferencehub.runtime import usable_cores, write_private_atomically
from inferencehub.worker.onnx_model import DEFAULT_MAX_BATCH_SIZE, session_options
from inferencehub.worker.providers import CPU, candidates
from inferencehub.worker.repository import ModelConfig
from inferencehub.worker.tuning import Constraints, Layout, Trial, default_layout, tune

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


class LayoutPlanner:
    """Decides each version's instances, threads and batch cap when it loads. Blocking."""

    def __init__(self, settings: WorkerSettings, cache_dir: Path | None) -> None:
        """`cache_dir`: where measurements are kept (None: measured at every load)."""
        self._settings = settings
        self._cache = TuningCache(cache_dir) if cache_dir is not None else None

    def plan(self, config: ModelConfig, path: Path) -> Layout:
        """Measured (or cached) for CPU versions with tuning = "auto"; model.toml's values and
        the defaults otherwise."""
        fixed = config.model_fields_set
        constraints = Constraints(
            cores=usable_cores(),
            instances=config.instances if "instances" in fixed else None,
            threads=self._settings.intra_op_threads or None,
            max_batch=DEFAULT_MAX_BATCH_SIZE
            if config.max_batch_size is None
            else config.max_batch_size,
            tune_batch=config.batching.enabled and not {"max_batch_size", "batching"} & fixed,
        )
        if config.tuning == "off":
            return default_layout(constraints, 'tuning = "off" in model.toml')
        choice = config.provider or self._settings.provider
        policy = config.provider_policy or self._settings.provider_policy
        first = candidates(choice, ort.get_available_providers(), policy)[0]
        if choice == "measure" or first != CPU:
            return default_layout(constraints, f"not tuned: {first} comes first, not the CPU")
        key = TuningCache.key(path, constraints) if self._cache is not None else ""
        cached = self._cache.load(key) if self._cache is not None else None
        if cached is not None:
            return cached
        layout = tune(
            lambda threads: ort.InferenceSession(
                str(path), session_options(threads), providers=[CPU]
            ),
            constraints,
            self._settings.tuning_budget_s,
        )
        logger.info("tuned %s: %s (%.1f s)", path, layout.reason, layout.spent_s)
        if self._cache is not None and layout.source == "measured":
            self._cache.save(key, layout)
        return layout


def cpu_model() -> str:
    """The CPU's name: a cached measurement is only valid on the same kind of CPU."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class TuningCache:
    """One JSON file per (model file, CPU, cores, onnxruntime, constraints) in a directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @staticmethod
    def key(model_path: Path, constraints: Constraints) -> str:
        described = {
            "format": CACHE_FORMAT,
            "cpu": cpu_model(),
            "onnxruntime": ort.__version__,
            "constraints": asdict(constraints),
        }
        sha = file_sha256(model_path)
        rest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
        return f"{sha[:32]}-{rest[:16]}"

    def load(self, key: str) -> Layout | None:
        path = self._directory / f"{key}.json"
        try:
            data = json.loads(path.read_text())
            trials = tuple(Trial(**t) for t in data.pop("trials"))
            return Layout(**{**data, "trials": trials, "source": "cached"})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring the tuning cache file %s: %s", path, exc)
            return None

    def save(self, key: str, layout: Layout) -> None:
        try:
            write_private_atomically(self._directory / f"{key}.json", json.dumps(asdict(layout)))
        except OSError as exc:
            logger.warning("cannot write the tuning cache in %s: %s", self._directory, exc)
